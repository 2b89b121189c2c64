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

// Conn is a TCP connection as its local end sees it.
type Conn struct{ Local, Remote netip.AddrPort }

// ConnOwners finds the processes holding sockets of the given connections
// in rstwatch's own network namespace (/proc/net/tcp{,6}, then every
// process's file descriptors, scanned once for all of them). Connections
// not found are left out.
func ConnOwners(procRoot string, conns []Conn) map[Conn]int {
	if procRoot == "" {
		procRoot = DefaultProcRoot
	}
	want := map[Conn]bool{}
	for _, c := range conns {
		want[c.norm()] = true
	}
	byInode := map[uint64]Conn{}
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		b, err := readBounded(procRoot + "/" + f)
		if err != nil {
			continue
		}
		for _, e := range parseTCPTable(b) {
			if want[e.conn] && e.inode != 0 {
				byInode[e.inode] = e.conn
			}
		}
	}
	out := map[Conn]int{}
	if len(byInode) == 0 {
		return out
	}
	ps, err := pids(procRoot)
	if err != nil {
		return out
	}
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
			if c, found := byInode[ino]; err == nil && found {
				out[c] = pid
			}
		}
	}
	// Keyed as asked.
	res := make(map[Conn]int, len(out))
	for _, c := range conns {
		if pid, ok := out[c.norm()]; ok {
			res[c] = pid
		}
	}
	return res
}

func (c Conn) norm() Conn {
	return Conn{netip.AddrPortFrom(c.Local.Addr().Unmap(), c.Local.Port()), netip.AddrPortFrom(c.Remote.Addr().Unmap(), c.Remote.Port())}
}

type tcpEntry struct {
	conn  Conn
	inode uint64
}

// parseTCPTable reads /proc/net/tcp or tcp6: each socket's 4-tuple and inode.
func parseTCPTable(table []byte) []tcpEntry {
	var out []tcpEntry
	sc := bufio.NewScanner(bytes.NewReader(table))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		l, ok1 := parseHexAddrPort(f[1])
		r, ok2 := parseHexAddrPort(f[2])
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if !ok1 || !ok2 || err != nil {
			continue
		}
		out = append(out, tcpEntry{Conn{l, r}, ino})
	}
	return out
}

// parseHexAddrPort reads "0100007F:0885" (IPv4) or the 32-hex-digit IPv6
// form: the address in host-order 32-bit words, the port big-endian.
func parseHexAddrPort(s string) (netip.AddrPort, bool) {
	h, ps, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(ps, 16, 16)
	if err != nil || (len(h) != 8 && len(h) != 32) {
		return netip.AddrPort{}, false
	}
	var b [16]byte
	n := len(h) / 2
	for w := 0; w < n/4; w++ {
		v, err := strconv.ParseUint(h[w*8:w*8+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, false
		}
		// Each 32-bit word is in the kernel's (little-endian) order.
		b[w*4], b[w*4+1], b[w*4+2], b[w*4+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	var a netip.Addr
	if n == 4 {
		a = netip.AddrFrom4([4]byte(b[:4]))
	} else {
		a = netip.AddrFrom16(b).Unmap()
	}
	return netip.AddrPortFrom(a, uint16(port)), true
}
