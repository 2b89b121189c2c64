package tracer

import (
	"net/netip"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
)

func TestAbortHold(t *testing.T) {
	cli := netip.MustParseAddrPort("127.0.0.1:40000")
	srv := netip.MustParseAddrPort("127.0.0.1:2181")
	other := netip.MustParseAddrPort("127.0.0.1:40001")
	maybe := uint16(rstwatchEventFlagEVENT_MAYBE_ABORT)
	retracts := uint16(rstwatchEventFlagEVENT_RETRACTS_RECEIVE)
	owner := &event.Owner{PID: 7, Comm: "java"}

	var got []string
	emit := func(e *event.Event) {
		s := e.Direction.String() + " " + e.Local.String()
		if e.Owner != nil {
			s += " " + e.Owner.Comm
		}
		got = append(got, s)
	}
	var h abortHold
	recv := func(local netip.AddrPort) *event.Event {
		return &event.Event{Direction: event.Receive, Local: local, Remote: srv, NetNS: 1, Owner: owner}
	}
	send := &event.Event{Direction: event.Send, Local: cli, Remote: srv, NetNS: 1}

	// Pass 0: the abort's receive, then its own send; another socket's
	// possible abort, which no send retracts.
	if !h.take(recv(cli), maybe) {
		t.Fatal("a possible abort's receive was not held")
	}
	if !h.take(recv(other), maybe) {
		t.Fatal("a possible abort's receive was not held")
	}
	if h.take(send, retracts) {
		t.Fatal("the retracting send was held")
	}
	if h.take(recv(cli), 0) {
		t.Fatal("an unmarked receive was held")
	}
	h.passDone(emit)
	if len(got) != 0 {
		t.Fatalf("released during the pass that read them: %v", got)
	}
	// Pass 1 read nothing of theirs: the other socket's receive is a reset
	// received after all; the retracted one is gone.
	h.passDone(emit)
	if len(got) != 1 || got[0] != "receive 127.0.0.1:40001 java" {
		t.Fatalf("released %v, want the unretracted receive with its owner", got)
	}
	got = nil
	h.take(recv(cli), maybe)
	h.flush(emit)
	if len(got) != 1 || len(h.held) != 0 {
		t.Fatalf("flush released %v, %d still held", got, len(h.held))
	}
	// A retraction for another namespace's connection drops nothing.
	got = nil
	h.take(recv(cli), maybe)
	h.take(&event.Event{Direction: event.Send, Local: cli, Remote: srv, NetNS: 2}, retracts)
	h.flush(emit)
	if len(got) != 1 {
		t.Fatalf("a retraction from another namespace dropped a receive: %v", got)
	}
}
