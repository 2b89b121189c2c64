package tracer

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// With events off, resets are only counted in the kernel, keyed by
// direction, reason, owner and ZooKeeper endpoint.
func TestAggregateOnly(t *testing.T) {
	testenv.RequireBPF(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	zkPort := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	tr, err := Open(Config{Aggregate: true, NoEvents: true, ZKPorts: []uint16{zkPort}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
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
	zk := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), zkPort)
	noSocket := "NO_SOCKET"
	if !tr.ReportsReasons() {
		noSocket = "UNKNOWN"
	}
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
