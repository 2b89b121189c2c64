package tracer

import "github.com/rstwatch/rstwatch/internal/event"

// abortHold drops the receive events that were no reset received. The
// kernel's tcp_reset() fires the receive tracepoint for a reset received,
// and also when it aborts a socket shut down for reading because data
// arrived (TCP_ABORT_ON_DATA; ZooKeeper's Java client and server shut
// their sockets down for reading before closing them), which then sends a
// reset of its own. The programs mark a receive that may be such an abort
// (EVENT_MAYBE_ABORT) and the send that proves it was one
// (EVENT_RETRACTS_RECEIVE): it follows within microseconds, on the same
// CPU, so it is in the ring right behind the receive. A marked receive is
// held until its send retracts it or a whole pass has gone by since it
// was read; a pass reads everything submitted before it began.
type abortHold struct {
	held []heldAbort
	pass uint64
}

type heldAbort struct {
	ev    event.Event
	owner event.Owner
	pass  uint64 // the pass that read it
}

// take holds a possible abort's receive, or drops the held receive a send
// retracts; it reports whether the event was held (not to be handed on).
func (h *abortHold) take(e *event.Event, flags uint16) bool {
	switch {
	case flags&uint16(rstwatchEventFlagEVENT_MAYBE_ABORT) != 0 && e.Direction == event.Receive:
		h.held = append(h.held, heldAbort{ev: *e, pass: h.pass})
		if e.Owner != nil {
			h.held[len(h.held)-1].owner = *e.Owner
		}
		return true
	case flags&uint16(rstwatchEventFlagEVENT_RETRACTS_RECEIVE) != 0 && e.Direction == event.Send:
		for i := range h.held {
			if r := &h.held[i].ev; r.NetNS == e.NetNS && r.Local == e.Local && r.Remote == e.Remote {
				h.held = append(h.held[:i], h.held[i+1:]...)
				break
			}
		}
	}
	return false
}

// passDone hands on the receives held since before this pass began: no
// send retracted them.
func (h *abortHold) passDone(emit func(*event.Event)) {
	n := 0
	for n < len(h.held) && h.held[n].pass < h.pass {
		h.emit(&h.held[n], emit)
		n++
	}
	if n > 0 {
		rest := copy(h.held, h.held[n:])
		clear(h.held[rest:])
		h.held = h.held[:rest]
	}
	h.pass++
}

// flush hands on every held receive (the reader is stopping).
func (h *abortHold) flush(emit func(*event.Event)) {
	for i := range h.held {
		h.emit(&h.held[i], emit)
	}
	h.held = h.held[:0]
}

func (h *abortHold) emit(a *heldAbort, emit func(*event.Event)) {
	if a.ev.Owner != nil {
		a.ev.Owner = &a.owner
	}
	if emit != nil {
		emit(&a.ev)
	}
}
