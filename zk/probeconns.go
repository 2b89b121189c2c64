package zk

import (
	"net"
	"net/netip"
	"sync"
	"time"
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
	now    func() time.Time

	mu    sync.Mutex
	conns map[probeKey]time.Time // zero time: still open
}

type probeKey struct{ local, remote netip.AddrPort }

// NewProbeConns returns an empty set with a 60 s linger.
func NewProbeConns() *ProbeConns {
	return &ProbeConns{Linger: 60 * time.Second, now: time.Now, conns: map[probeKey]time.Time{}}
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
	p.pruneLocked()
	_, ok1 := p.conns[probeKey{a, b}]
	_, ok2 := p.conns[probeKey{b, a}]
	return ok1 || ok2
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
