package tracer

import (
	"net/netip"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Pairing received resets with the local TCP sends that explain them
// (Config.LocalAddr). When the sender's address is on this host (loopback,
// or an address of one of its namespaces), its TCP stack's send of the
// reset is traced too, unless the TCP stack did not send it: a firewall's
// reject, a forged segment. Such a received reset is marked
// Sender{Unknown, Inferred}.
//
// The two events do not come in a fixed order: a reset answering a segment
// is traced before it is sent, but an active reset (close, abort) is traced
// after its packet has gone out, and on loopback or a veth the receiver has
// usually processed it by then. So a received reset from a local address
// that no earlier send explains is held back until a later send explains
// it or pairHoldPasses passes of the reader (at least pairHoldTime) have
// gone by, which is far longer than the microseconds between the two.

const (
	pairHoldPasses = 2
	pairHoldTime   = 10 * time.Millisecond
	pairHoldMax    = 4096 // held receives; past it the oldest go on unmarked
	pairSendTTL    = 10 * time.Second
	pairSendMax    = 65536
)

// pairKey is a reset's source and destination, compact to hash: the
// pairing looks one up for every local send and receive.
type pairKey struct {
	src, dst     [16]byte
	sport, dport uint16
}

func keyOf(src, dst netip.AddrPort) pairKey {
	return pairKey{src.Addr().As16(), dst.Addr().As16(), src.Port(), dst.Port()}
}

type heldReceive struct {
	ev        event.Event
	owner     event.Owner
	key       pairKey
	pass      uint64
	at        time.Time
	explained bool
}

type pendingSend struct {
	count uint32
	last  time.Time
}

type pairer struct {
	cb    Callbacks
	local func(netip.Addr) bool
	// onlyLoopback: with a namespace filter a sender in another namespace
	// is filtered out in the kernel, so only loopback pairs can be told.
	onlyLoopback bool
	// cannot is why no received reset can be marked here ("" when one can).
	cannot string
	// healthy says whether every record reached the reader and no program
	// run was skipped so far; read only when about to mark.
	healthy func() bool
	sick    bool

	sends   map[pairKey]pendingSend
	expired time.Time // when sends were last expired
	held    []heldReceive
	pass    uint64
	// passAt is when the last pass ended: the clock is read once a pass,
	// not for every event of a storm.
	passAt time.Time
	now    func() time.Time
}

func newPairer(t *Tracer, cb Callbacks) *pairer {
	p := &pairer{
		cb:           cb,
		local:        t.cfg.LocalAddr,
		onlyLoopback: t.cfg.NetNS != 0,
		sends:        map[pairKey]pendingSend{},
		now:          time.Now,
	}
	switch {
	case t.cfg.PID != 0:
		p.cannot = "--pid filters out the sender's side"
	case !t.ReportsReasons() && !t.UsesFentryFallback():
		p.cannot = "this kernel does not report every reset its TCP stack sends"
	}
	p.healthy = func() bool {
		lost, err := t.lost()
		if err != nil || lost > 0 {
			return false
		}
		missed, err := t.Missed()
		return err == nil && missed == 0
	}
	return p
}

func (p *pairer) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	return !p.onlyLoopback && p.local(a)
}

func (p *pairer) wrap() Callbacks {
	out := p.cb
	out.Event = p.event
	out.PassDone = func() {
		p.pass++
		p.passAt = p.now()
		// Receives held during the pass are stamped with its end: their
		// hold can only be longer than pairHoldTime, never shorter.
		for i := len(p.held) - 1; i >= 0 && p.held[i].at.IsZero(); i-- {
			p.held[i].at = p.passAt
		}
		p.release(false)
		p.expireSends(false)
		if p.cb.PassDone != nil {
			p.cb.PassDone()
		}
	}
	return out
}

func (p *pairer) event(e *event.Event) {
	if e.Sender != nil {
		p.cb.Event(e)
		return
	}
	switch e.Direction {
	case event.Send:
		if p.isLocal(e.Remote.Addr()) {
			p.sent(keyOf(e.Local, e.Remote))
		}
	case event.Receive:
		if !p.isLocal(e.Remote.Addr()) {
			break
		}
		k := keyOf(e.Remote, e.Local)
		if s, ok := p.sends[k]; ok {
			if s.count--; s.count == 0 {
				delete(p.sends, k)
			} else {
				p.sends[k] = s
			}
			break
		}
		if len(p.held) >= pairHoldMax {
			p.emit(&p.held[0], false)
			rest := copy(p.held, p.held[1:])
			p.held = p.held[:rest]
		}
		p.held = append(p.held, heldReceive{ev: *e, key: k, pass: p.pass}) // at: when the pass ends
		if e.Owner != nil {
			p.held[len(p.held)-1].owner = *e.Owner
		}
		return
	}
	p.cb.Event(e)
}

// sent explains a held receive with a TCP send, or records the send for
// the receive that is still to come.
func (p *pairer) sent(k pairKey) {
	for i := range p.held {
		if h := &p.held[i]; !h.explained && h.key == k {
			h.explained = true
			p.release(false)
			return
		}
	}
	s, ok := p.sends[k]
	if !ok && len(p.sends) >= pairSendMax {
		p.expireSends(true)
		if len(p.sends) >= pairSendMax {
			// A send that cannot be remembered could leave its receive
			// unexplained: mark no more.
			p.sick = true
			return
		}
	}
	s.count++
	// When the previous pass ended (a pass earlier than the send at most,
	// against a TTL of seconds).
	s.last = p.passAt
	if s.last.IsZero() {
		s.last = p.now()
	}
	p.sends[k] = s
}

// expireSends forgets sends that no receive followed (a remote peer, or a
// reset the receiver dropped), about once a second.
func (p *pairer) expireSends(force bool) {
	now := p.now()
	if len(p.sends) == 0 || (!force && now.Sub(p.expired) < time.Second) {
		return
	}
	p.expired = now
	cut := now.Add(-pairSendTTL)
	for k, s := range p.sends {
		if s.last.Before(cut) {
			delete(p.sends, k)
		}
	}
}

// release hands on the held receives, in order, up to the first one still
// waiting for its send; all of them when final.
func (p *pairer) release(final bool) {
	n := 0
	var now time.Time
	for i := range p.held {
		h := &p.held[i]
		due := final
		if !due && !h.at.IsZero() && p.pass >= h.pass+pairHoldPasses {
			if now.IsZero() {
				now = p.now()
			}
			due = now.Sub(h.at) >= pairHoldTime
		}
		if !h.explained && !due {
			break
		}
		p.emit(h, !h.explained)
		n++
	}
	if n > 0 {
		// Keep the array: a linger storm holds one receive at a time.
		rest := copy(p.held, p.held[n:])
		clear(p.held[rest:])
		p.held = p.held[:rest]
	}
}

func (p *pairer) emit(h *heldReceive, unexplained bool) {
	if h.ev.Owner != nil {
		h.ev.Owner = &h.owner
	}
	if unexplained && p.canMark() {
		s := &event.Sender{Class: event.SenderUnknown, Inferred: true}
		if h.ev.Remote.Addr().IsLoopback() {
			s.NetNS = h.ev.NetNS
		}
		h.ev.Sender = s
	}
	p.cb.Event(&h.ev)
}

func (p *pairer) canMark() bool {
	if p.cannot != "" || p.sick {
		return false
	}
	if !p.healthy() {
		p.sick = true
		return false
	}
	return true
}

// flush hands on everything held, at the end of a trace.
func (p *pairer) flush() {
	if len(p.held) == 0 {
		return
	}
	p.release(true)
	if p.cb.PassDone != nil {
		p.cb.PassDone()
	}
}
