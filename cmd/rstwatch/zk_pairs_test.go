package main

import (
	"net/netip"
	"testing"
)

// pairs on the two shapes seen under load, with the rows rstwatch gave
// (times, reasons, states as the kernel reported them): a server's close
// (an active RST, with timestamps) and its listener's answer to the
// client's segment crossing it (a bare reply) on one connection. The
// client's socket takes the first on the wire; each RST is checked against
// its own sending row, the receiving row against the first RST's.
func TestPairsTwoRSTsOnOneConnection(t *testing.T) {
	srv := netip.MustParseAddrPort("127.0.0.1:46617")
	cli := netip.MustParseAddrPort("127.0.0.1:56622")
	active := rstPacket{src: srv, dst: cli, line: "IP 127.0.0.1.46617 > 127.0.0.1.56622: Flags [R.], seq 1, ack 1, win 64, options [nop,nop,TS val 1841705768 ecr 718938274], length 0"}
	reply := rstPacket{src: srv, dst: cli, line: "IP 127.0.0.1.46617 > 127.0.0.1.56622: Flags [R], seq 536502937, win 0, length 0"}
	rows := zkLines(t, []byte(`{"type":"reset","time":"2026-11-30T01:36:56.692283239Z","direction":"send","reason":"TCP_FLAGS","state":"LISTEN","local":{"port":46617},"remote":{"port":56622}}
{"type":"reset","time":"2026-11-30T01:36:56.692300932Z","direction":"receive","reason":"UNKNOWN","state":"CLOSE_WAIT","local":{"port":56622},"remote":{"port":46617}}
{"type":"reset","time":"2026-11-30T01:36:56.692327022Z","direction":"send","reason":"TCP_STATE","state":"CLOSE","local":{"port":46617},"remote":{"port":56622}}`))
	for _, tc := range []struct {
		name  string
		wire  []rstPacket
		want  []string // each RST's sending row's reason
		first int      // the RST that has the receiving row
	}{
		{"the close's RST first on the wire", []rstPacket{active, reply}, []string{"TCP_STATE", "TCP_FLAGS"}, 0},
		{"the listener's reply first on the wire", []rstPacket{reply, active}, []string{"TCP_FLAGS", "TCP_STATE"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := pairs(t, rows, tc.wire, 0)
			if len(ps) != 2 {
				t.Fatalf("%d pairs", len(ps))
			}
			for i, p := range ps {
				if p.send.Reason != tc.want[i] {
					t.Errorf("RST %d paired with the %s row, want %s", i, p.send.Reason, tc.want[i])
				}
				if (p.recv != nil) != (i == tc.first) {
					t.Errorf("RST %d: receiving row %v", i, p.recv != nil)
				}
			}
		})
	}
}
