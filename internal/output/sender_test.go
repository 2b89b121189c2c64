package output

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
)

// The sender of a reset the TCP stack did not make, in JSON and in the
// table; absent for the TCP stack's own.
func TestSenderOutput(t *testing.T) {
	base := event.Event{Direction: event.Send, Reason: "UNKNOWN",
		Local: netip.MustParseAddrPort("192.0.2.2:7777"), Remote: netip.MustParseAddrPort("192.0.2.1:40000")}
	nf := base
	nf.Sender = &event.Sender{Class: event.SenderNetfilter, Detail: "nftables", Hook: "input", NetNS: 7, Device: "veth0"}
	raw := base
	raw.Sender = &event.Sender{Class: event.SenderRawSocket, Detail: "raw IP socket", PID: 30, Comm: "tcp\x01kill", Socket: 99}
	inferred := base
	inferred.Direction = event.Receive
	inferred.Sender = &event.Sender{Class: event.SenderUnknown, Inferred: true}

	var out bytes.Buffer
	j := NewJSON(&out)
	for _, e := range []event.Event{base, nf, raw, inferred} {
		if err := j.Event(&e); err != nil {
			t.Fatal(err)
		}
	}
	j.Flush()
	type sender struct {
		Class    string  `json:"class"`
		Detail   *string `json:"detail"`
		Hook     *string `json:"hook"`
		NetNS    *uint32 `json:"netns"`
		Device   *string `json:"device"`
		PID      *uint32 `json:"pid"`
		Comm     *string `json:"comm"`
		Socket   *uint64 `json:"socket_inode"`
		Inferred bool    `json:"inferred"`
	}
	var got []*sender
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var l struct {
			Sender *sender `json:"sender"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		got = append(got, l.Sender)
	}
	if got[0] != nil {
		t.Errorf("the TCP stack's reset has a sender: %+v", got[0])
	}
	if s := got[1]; s == nil || s.Class != "netfilter" || *s.Detail != "nftables" || *s.Hook != "input" || *s.NetNS != 7 || s.PID != nil || s.Inferred {
		t.Errorf("netfilter: %+v", s)
	}
	if s := got[2]; s == nil || s.Class != "raw socket" || *s.PID != 30 || *s.Comm != "tcp\x01kill" || *s.Socket != 99 || s.Hook != nil {
		t.Errorf("raw socket: %+v", s)
	}
	if s := got[3]; s == nil || s.Class != "unknown" || !s.Inferred || s.Detail != nil {
		t.Errorf("inferred: %+v", s)
	}

	for e, want := range map[*event.Event]string{
		&nf:       " sender:netfilter nftables input",
		&raw:      " sender:raw-socket 30/tcp?kill",
		&inferred: " sender:not-the-TCP-stack(inferred)",
		&base:     "",
	} {
		if got := senderCell(e); got != want {
			t.Errorf("cell %q, want %q", got, want)
		}
	}
}

// The table names a sender that is not the TCP stack with or without the
// WORKLOAD column (which is there wherever cgroup v2 is mounted).
func TestSenderTableCell(t *testing.T) {
	e := event.Event{Direction: event.Receive, Reason: "UNKNOWN", State: "SYN_SENT",
		Local: netip.MustParseAddrPort("192.0.2.1:42628"), Remote: netip.MustParseAddrPort("192.0.2.2:7777"),
		Owner:  &event.Owner{PID: 26198, Comm: "curl", Alive: true, Source: event.OwnerSocket},
		Task:   event.Task{PID: 26198, Comm: "curl"},
		Sender: &event.Sender{Class: event.SenderUnknown, Inferred: true}}
	for _, workload := range []bool{false, true} {
		var out bytes.Buffer
		tb := NewTable(&out)
		tb.Workload = workload
		if err := tb.Event(&e); err != nil {
			t.Fatal(err)
		}
		tb.Flush()
		if !strings.Contains(out.String(), "26198/curl sender:not-the-TCP-stack(inferred)\n") {
			t.Errorf("workload column %v: no sender cell:\n%s", workload, out.String())
		}
	}
}
