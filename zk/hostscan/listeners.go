package hostscan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ErrListenerHidden: a socket listens on the port, but no process that
// rstwatch may look into holds it (other users' sockets need privileges).
var ErrListenerHidden = errors.New("the listening process is not visible (run as root to see other users' sockets)")

// ListenerPIDs returns the processes that hold a listening TCP socket on
// port (any address, IPv4 or IPv6) in rstwatch's own network namespace, as
// /proc/net/tcp{,6} and /proc/PID/fd say: none when nothing listens,
// ErrListenerHidden when something does but its process cannot be seen.
// It scans every process's file descriptors, so call it once per
// endpoint, not per event.
func ListenerPIDs(procRoot string, port uint16) ([]int, error) {
	if procRoot == "" {
		procRoot = DefaultProcRoot
	}
	inodes := map[uint64]bool{}
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		b, err := readBounded(procRoot + "/" + f)
		if err != nil {
			continue
		}
		for _, ino := range ListeningInodes(b, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return nil, nil
	}
	ps, err := pids(procRoot)
	if err != nil {
		return nil, fmt.Errorf("listeners on port %d: %w", port, err)
	}
	var out []int
	for _, pid := range ps {
		p := proc{root: procRoot, pid: pid}
		ents, err := os.ReadDir(p.path("fd"))
		if err != nil {
			continue
		}
		for _, e := range ents {
			t, err := os.Readlink(p.path("fd", e.Name()))
			if err != nil {
				continue
			}
			s, ok := strings.CutPrefix(t, "socket:[")
			if !ok {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
			if err == nil && inodes[ino] {
				out = append(out, pid)
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("listeners on port %d: %w", port, ErrListenerHidden)
	}
	slices.Sort(out)
	return out, nil
}

// ListeningInodes returns the inodes of LISTEN sockets on port in a
// /proc/net/tcp or tcp6 text.
func ListeningInodes(table []byte, port uint16) []uint64 {
	var out []uint64
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || uint16(p) != port {
			continue
		}
		if ino, err := strconv.ParseUint(f[9], 10, 64); err == nil && ino != 0 {
			out = append(out, ino)
		}
	}
	return out
}

// SameListener says whether one process of this host listens on both
// ports (a ZooKeeper client port and an AdminServer port): only then is
// that AdminServer this server's. The error says why it cannot tell (the
// listeners are not visible), and names the processes when they differ.
func SameListener(procRoot string, client, admin uint16) (bool, error) {
	pc, err := ListenerPIDs(procRoot, client)
	if err != nil {
		return false, err
	}
	pa, err := ListenerPIDs(procRoot, admin)
	if err != nil {
		return false, err
	}
	for _, p := range pc {
		if slices.Contains(pa, p) {
			return true, nil
		}
	}
	switch {
	case len(pc) == 0:
		return false, fmt.Errorf("nothing listens on port %d", client)
	case len(pa) == 0:
		return false, fmt.Errorf("nothing listens on port %d", admin)
	}
	return false, fmt.Errorf("port %d belongs to pid %v, port %d to pid %v", admin, pa, client, pc)
}

// IsLocalAddr reports whether a is an address of this host (loopback, or
// one of its interfaces' addresses).
func IsLocalAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
				return true
			}
		}
	}
	return false
}
