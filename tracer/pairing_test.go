package tracer

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
)

// pairRig drives a pairer with events and passes, on a fake clock.
type pairRig struct {
	p   *pairer
	now time.Time
	out []event.Event
}

func newPairRig(t *testing.T, local ...string) *pairRig {
	r := &pairRig{now: time.Unix(1000, 0)}
	set := map[netip.Addr]bool{}
	for _, a := range local {
		set[netip.MustParseAddr(a)] = true
	}
	r.p = &pairer{
		local:   func(a netip.Addr) bool { return set[a] },
		sends:   map[pairKey]pendingSend{},
		now:     func() time.Time { return r.now },
		healthy: func() bool { return true },
	}
	r.p.cb = Callbacks{Event: func(e *event.Event) {
		cp := *e
		if e.Owner != nil {
			o := *e.Owner
			cp.Owner = &o
		}
		r.out = append(r.out, cp)
	}}
	return r
}

func (r *pairRig) event(dir event.Direction, local, remote string) {
	e := event.Event{Direction: dir, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote),
		Owner: &event.Owner{PID: 7, Comm: "victim"}}
	r.p.wrap().Event(&e)
	e.Owner.PID = 99 // the reader reuses what it passed: a held copy must not change
}

func (r *pairRig) pass(d time.Duration) {
	r.now = r.now.Add(d)
	r.p.wrap().PassDone()
}

func (r *pairRig) marked() (n int) {
	for _, e := range r.out {
		if e.Sender != nil && e.Sender.Inferred {
			n++
		}
	}
	return n
}

const (
	srv = "192.0.2.2:7777"
	cli = "192.0.2.1:40000"
)

// A reset that answers a segment is traced before it is sent: its receive
// finds the send and goes on at once, unmarked.
func TestPairSendFirst(t *testing.T) {
	r := newPairRig(t, "192.0.2.1", "192.0.2.2")
	r.event(event.Send, srv, cli)
	r.event(event.Receive, cli, srv)
	if len(r.out) != 2 || r.marked() != 0 {
		t.Fatalf("out %+v", r.out)
	}
}

// An active reset is traced after its packet went out: the receive is held
// until the send comes, then both go on in their order, unmarked.
func TestPairReceiveFirst(t *testing.T) {
	r := newPairRig(t, "192.0.2.1", "192.0.2.2")
	r.event(event.Receive, cli, srv)
	if len(r.out) != 0 {
		t.Fatalf("a receive from a local sender went on before its send: %+v", r.out)
	}
	r.event(event.Send, srv, cli)
	if len(r.out) != 2 || r.out[0].Direction != event.Receive || r.out[1].Direction != event.Send || r.marked() != 0 {
		t.Fatalf("out %+v", r.out)
	}
	if r.out[0].Owner == nil || r.out[0].Owner.PID != 7 {
		t.Fatalf("held receive's owner %+v, want the one it had", r.out[0].Owner)
	}
}

// No send comes: after two passes and 10 ms the receive is marked.
func TestPairUnexplained(t *testing.T) {
	r := newPairRig(t, "192.0.2.1", "192.0.2.2")
	r.event(event.Receive, cli, srv)
	r.pass(time.Millisecond)
	r.pass(time.Millisecond)
	if len(r.out) != 0 {
		t.Fatalf("released before 10 ms: %+v", r.out)
	}
	r.pass(20 * time.Millisecond)
	if len(r.out) != 1 || r.marked() != 1 || r.out[0].Sender.Class != event.SenderUnknown {
		t.Fatalf("out %+v", r.out)
	}
}

// A sender elsewhere is not this host's to explain: it goes on at once.
// Loopback is always local, and marked with the receiver's namespace.
func TestPairRemoteAndLoopback(t *testing.T) {
	r := newPairRig(t, "192.0.2.1")
	r.event(event.Receive, cli, "203.0.113.9:443")
	if len(r.out) != 1 || r.marked() != 0 {
		t.Fatalf("remote sender: %+v", r.out)
	}
	r.out = nil
	e := event.Event{Direction: event.Receive, Local: netip.MustParseAddrPort("127.0.0.1:5000"),
		Remote: netip.MustParseAddrPort("127.0.0.1:6000"), NetNS: 42}
	r.p.wrap().Event(&e)
	r.p.flush()
	if len(r.out) != 1 || r.marked() != 1 || r.out[0].Sender.NetNS != 42 {
		t.Fatalf("loopback: %+v", r.out)
	}
}

// Where a send could have been missed, nothing is marked.
func TestPairCannotKnow(t *testing.T) {
	for name, setup := range map[string]func(*pairer){
		"pid filter": func(p *pairer) { p.cannot = "--pid" },
		"lost":       func(p *pairer) { p.healthy = func() bool { return false } },
	} {
		r := newPairRig(t, "192.0.2.1", "192.0.2.2")
		setup(r.p)
		r.event(event.Receive, cli, srv)
		r.p.flush()
		if len(r.out) != 1 || r.marked() != 0 {
			t.Errorf("%s: %+v", name, r.out)
		}
	}
}

// With --netns, only loopback senders are known to be traced.
func TestPairNetNSFilter(t *testing.T) {
	r := newPairRig(t, "192.0.2.1", "192.0.2.2")
	r.p.onlyLoopback = true
	r.event(event.Receive, cli, srv)
	if len(r.out) != 1 || r.marked() != 0 {
		t.Fatalf("out %+v", r.out)
	}
}

// Sends no receive follows are forgotten after their time.
func TestPairSendsExpire(t *testing.T) {
	r := newPairRig(t, "192.0.2.1", "192.0.2.2")
	r.event(event.Send, srv, cli)
	r.pass(pairSendTTL + 2*time.Second)
	if len(r.p.sends) != 0 {
		t.Fatalf("sends kept: %d", len(r.p.sends))
	}
	r.event(event.Receive, cli, srv)
	r.p.flush()
	if r.marked() != 1 {
		t.Fatalf("an expired send explained a later receive: %+v", r.out)
	}
}

// The pairing's cost per event on a loopback storm, where every event is
// local: a refused connect (send, then receive) and a linger-0 close
// (receive, then send), each on a new port.
func BenchmarkPairing(b *testing.B) {
	for _, order := range []string{"send-first", "receive-first"} {
		b.Run(order, func(b *testing.B) {
			p := &pairer{
				local:   func(netip.Addr) bool { return false },
				sends:   map[pairKey]pendingSend{},
				now:     time.Now,
				healthy: func() bool { return true },
				cb:      Callbacks{Event: func(*event.Event) {}, PassDone: func() {}},
			}
			cb := p.wrap()
			srv := netip.MustParseAddrPort("127.0.0.1:7777")
			send := event.Event{Direction: event.Send, Local: srv}
			recv := event.Event{Direction: event.Receive, Remote: srv}
			b.ReportAllocs()
			for i := range b.N {
				cli := netip.AddrPortFrom(srv.Addr(), uint16(i))
				send.Remote, recv.Local = cli, cli
				if order == "send-first" {
					cb.Event(&send)
					cb.Event(&recv)
				} else {
					cb.Event(&recv)
					cb.Event(&send)
				}
				if i%256 == 0 {
					cb.PassDone()
				}
			}
		})
	}
}
