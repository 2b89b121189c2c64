package wire

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProbeConns remembers rstwatch's own probe connections (4-tuples), while
// they are open and for a while after, so that the tracer pipeline can tell
// its own connections from the ones it reports. The probe is built never to
// cause a reset, but if one ever does, rstwatch must not explain it as
// somebody else's.
type ProbeConns struct {
	// Linger is how long a closed probe connection is still recognised;
	// late segments can hit it while in TIME_WAIT (60 s on Linux).
	Linger time.Duration
	// Observe, when set before the first probe, hears of each probe
	// connection: its local port (address unspecified) before connect,
	// then its full 4-tuple (for --debug logs).
	Observe func(local, remote netip.AddrPort)
	now     func() time.Time

	mu    sync.Mutex
	conns map[probeKey]time.Time // zero time: still open
	// dials are probe sockets by local port and remote endpoint, recorded
	// before connect: the source address is only chosen by connect, and a
	// refused connect leaves no connection to track.
	dials map[dialKey]time.Time
}

type probeKey struct{ local, remote netip.AddrPort }

type dialKey struct {
	port   uint16
	remote netip.AddrPort
}

// NewProbeConns returns an empty set with a 60 s linger.
func NewProbeConns() *ProbeConns {
	return &ProbeConns{Linger: 60 * time.Second, now: time.Now, conns: map[probeKey]time.Time{}, dials: map[dialKey]time.Time{}}
}

// bindBeforeConnect is a net.Dialer Control hook: it binds the socket to an
// ephemeral port and records it with the remote endpoint. A nil receiver
// records nothing.
func (p *ProbeConns) bindBeforeConnect(network, address string, rc syscall.RawConn) error {
	if p == nil {
		return nil
	}
	remote, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil // not an address we can key on; the dial goes on unrecorded
	}
	var port uint16
	var bindErr error
	err = rc.Control(func(fd uintptr) {
		var sa unix.Sockaddr = &unix.SockaddrInet4{}
		if network == "tcp6" {
			sa = &unix.SockaddrInet6{}
		}
		if bindErr = unix.Bind(int(fd), sa); bindErr != nil {
			return
		}
		got, err := unix.Getsockname(int(fd))
		if err != nil {
			bindErr = err
			return
		}
		switch a := got.(type) {
		case *unix.SockaddrInet4:
			port = uint16(a.Port)
		case *unix.SockaddrInet6:
			port = uint16(a.Port)
		}
	})
	if err != nil {
		return err
	}
	if bindErr != nil {
		return fmt.Errorf("binding the probe socket: %w", bindErr)
	}
	p.mu.Lock()
	p.pruneLocked()
	p.dials[dialKey{port, unmap(remote)}] = p.now()
	p.mu.Unlock()
	if p.Observe != nil {
		p.Observe(netip.AddrPortFrom(netip.IPv4Unspecified(), port), unmap(remote))
	}
	return nil
}

// track records conn and returns the function to call once it is closed.
// A nil receiver tracks nothing.
func (p *ProbeConns) track(conn net.Conn) (closed func()) {
	if p == nil {
		return func() {}
	}
	k := probeKey{addrPortOf(conn.LocalAddr()), addrPortOf(conn.RemoteAddr())}
	p.mu.Lock()
	p.pruneLocked()
	p.conns[k] = time.Time{}
	p.mu.Unlock()
	if p.Observe != nil {
		p.Observe(k.local, k.remote)
	}
	return func() {
		p.mu.Lock()
		p.conns[k] = p.now()
		p.mu.Unlock()
	}
}

func (p *ProbeConns) pruneLocked() {
	now := p.now()
	for k, closedAt := range p.conns {
		if !closedAt.IsZero() && now.Sub(closedAt) > p.Linger {
			delete(p.conns, k)
		}
	}
	// A dial lasts at most its timeout; after that the connection, if
	// any, is tracked in conns.
	for k, at := range p.dials {
		if now.Sub(at) > p.Linger {
			delete(p.dials, k)
		}
	}
}

// Contains reports whether a and b are the two ends of a probe connection,
// in either order: this host may be the prober (local = probe's end) or,
// on loopback or a server host, the server (local = server's end).
func (p *ProbeConns) Contains(a, b netip.AddrPort) bool {
	if p == nil {
		return false
	}
	a, b = unmap(a), unmap(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	// Every event of a storm asks: with no probe open or lingering (the
	// usual case) there is nothing to prune or look up.
	if len(p.conns) == 0 && len(p.dials) == 0 {
		return false
	}
	p.pruneLocked()
	_, ok1 := p.conns[probeKey{a, b}]
	_, ok2 := p.conns[probeKey{b, a}]
	_, ok3 := p.dials[dialKey{a.Port(), b}]
	_, ok4 := p.dials[dialKey{b.Port(), a}]
	return ok1 || ok2 || ok3 || ok4
}

// LocalPorts lists the local ports of probe connections open or lingering.
func (p *ProbeConns) LocalPorts() []uint16 {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pruneLocked()
	out := make([]uint16, 0, len(p.conns))
	for k := range p.conns {
		out = append(out, k.local.Port())
	}
	return out
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		return unmap(t.AddrPort())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return unmap(ap)
}

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
