package hostscan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/rstwatch/rstwatch/internal/procfs"
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
	var out []int
	procfs.WalkSockets(procRoot, func(pid uint32, inode uint64) bool {
		if inodes[inode] {
			out = append(out, int(pid))
			return false
		}
		return true
	})
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
	for _, e := range procfs.ParseTCP(table) {
		if e.State == procfs.TCPListen && e.Local.Port() == port && e.Inode != 0 {
			out = append(out, e.Inode)
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
		for _, e := range procfs.ParseTCP(b) {
			if c := (Conn{e.Local, e.Remote}); want[c] && e.Inode != 0 {
				byInode[e.Inode] = c
			}
		}
	}
	out := map[Conn]int{}
	if len(byInode) == 0 {
		return out
	}
	procfs.WalkSockets(procRoot, func(pid uint32, inode uint64) bool {
		if c, found := byInode[inode]; found {
			out[c] = int(pid)
		}
		return true
	})
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
