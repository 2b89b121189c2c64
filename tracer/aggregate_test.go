package tracer

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// countingZK opens a tracer that only counts (serve's mode), with a
// loopback listener's port as its ZooKeeper port; both close with the test.
func countingZK(t *testing.T) (net.Listener, netip.AddrPort, *Tracer) {
	t.Helper()
	testenv.RequireBPF(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	zk := netip.MustParseAddrPort(ln.Addr().String())
	tr, err := Open(Config{Aggregate: true, NoEvents: true, ZKPorts: []uint16{zk.Port()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return ln, zk, tr
}

// With events off, resets are only counted in the kernel, keyed by
// direction, reason, owner and ZooKeeper endpoint.
func TestAggregateOnly(t *testing.T) {
	ln, zk, tr := countingZK(t)
	ln.Close() // connects are refused
	const n = 5
	for range n {
		if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
			c.Close()
		}
	}
	counts, err := tr.Counts()
	if err != nil {
		t.Fatal(err)
	}
	noSocket := reasonOn(tr, "NO_SOCKET")
	var sent, received uint64
	for _, c := range counts {
		t.Logf("%+v", c)
		if c.ZKEndpoint != zk {
			continue
		}
		if c.NetNS != nsInode(t, "") {
			t.Errorf("row in netns %d, want this test's %d: %+v", c.NetNS, nsInode(t, ""), c)
		}
		switch {
		case c.Direction == event.Send && c.Reason == noSocket && c.OwnerPID == 0:
			sent += c.Count
		case c.Direction == event.Receive && c.OwnerComm != "" && c.OwnerSource == event.OwnerSocket:
			received += c.Count
		}
	}
	if sent != n || received != n {
		t.Fatalf("counted %d sent, %d received for %s; want %d each", sent, received, zk, n)
	}
	st, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Emitted != 0 {
		t.Fatalf("emitted %d records with events off", st.Emitted)
	}
}

// The kernel's abort of a socket shut down for reading fires the receive
// tracepoint although no reset was received; the abort's own send takes
// that count back, so the counts have the abort's reset only.
func TestAggregateTakesBackAbortReceives(t *testing.T) {
	ln, zk, tr := countingZK(t)
	if !tr.ReportsReasons() && !tr.UsesFentryFallback() {
		t.Skip("this kernel does not report the resets its TCP stack sends in reply to a segment")
	}
	c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cli := c.(*net.TCPConn)
	if err := cli.CloseRead(); err != nil {
		t.Fatal(err)
	}
	if err := cli.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the FIN is acknowledged
	s.Write(make([]byte, 300000))     // fails once the abort's reset is in
	time.Sleep(100 * time.Millisecond)

	counts, err := tr.Counts()
	if err != nil {
		t.Fatal(err)
	}
	abort := reasonOn(tr, "TCP_ABORT_ON_DATA")
	var aborts, received uint64
	for _, c := range counts {
		if c.ZKEndpoint != zk {
			continue
		}
		t.Logf("%+v", c)
		switch {
		case c.Direction == event.Send && c.Reason == abort && c.State == "CLOSE":
			aborts += c.Count
		case c.Direction == event.Receive && c.State != "CLOSE_WAIT" && c.State != "ESTABLISHED":
			t.Errorf("the client's abort counted as a received reset: %+v", c)
		case c.Direction == event.Receive:
			received += c.Count
		}
	}
	if aborts != 1 || received != 1 {
		t.Errorf("counted %d aborts and %d received resets, want 1 each", aborts, received)
	}
	if st, err := tr.Stats(); err != nil || st.AbortsRetracted != 1 {
		t.Errorf("stats: %d receives retracted, want 1 (%v)", st.AbortsRetracted, err)
	}
}
