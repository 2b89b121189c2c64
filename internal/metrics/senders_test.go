package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstwatch/rstwatch/internal/event"
)

func TestSendersCounts(t *testing.T) {
	s := NewSenders(Limits{OwnerComms: 1})
	nf := &event.Sender{Class: event.SenderNetfilter, Detail: "nftables", Hook: "input"}
	s.Add(&event.Event{Direction: event.Send, Sender: nf})
	s.Add(&event.Event{Direction: event.Send, Sender: nf})
	s.Add(&event.Event{Direction: event.Receive, Sender: nf}) // the same reset, received: not counted again
	s.Add(&event.Event{Direction: event.Send, Sender: &event.Sender{Class: event.SenderRawSocket, Detail: "raw IP socket", PID: 1, Comm: "forger"}})
	s.Add(&event.Event{Direction: event.Send, Sender: &event.Sender{Class: event.SenderRawSocket, Detail: "raw IP socket", PID: 2, Comm: "scanner"}})
	s.Add(&event.Event{Direction: event.Receive, Sender: &event.Sender{Class: event.SenderUnknown, Inferred: true}})
	s.Add(&event.Event{Direction: event.Send}) // the TCP stack's

	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	if n := counterValue(t, reg, "rstwatch_received_resets_not_from_tcp_stack_total", nil); n != 1 {
		t.Errorf("not from the TCP stack: %v, want 1", n)
	}
	if n := counterValue(t, reg, "rstwatch_resets_other_senders_folded_total", nil); n != 1 {
		t.Errorf("folded: %v, want 1", n)
	}
	for labels, n := range map[[4]string]float64{
		{"netfilter", "nftables", "input", ""}:        2,
		{"raw socket", "raw IP socket", "", "forger"}: 1,
		{"raw socket", "raw IP socket", "", Other}:    1,
	} {
		got := counterValue(t, reg, "rstwatch_resets_other_senders_total", map[string]string{
			"sender": labels[0], "detail": labels[1], "hook": labels[2], "sender_comm": labels[3]})
		if got != n {
			t.Errorf("%v: %v, want %v", labels, got, n)
		}
	}
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}
