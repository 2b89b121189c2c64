package tracer

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// closedLoopbackPort returns a loopback port that was just free.
func closedLoopbackPort(t testing.TB) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// refuseN connects to a closed loopback port n times: 2n resets (one sent,
// one received).
func refuseN(t testing.TB, port uint16, n int) {
	t.Helper()
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port).String()
	for range n {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Fatalf("connect to closed port %s succeeded", addr)
		}
	}
}

// A ring buffer far too small for a burst, read late: the drops reported
// are exactly the events generated and not received. The port filter keeps
// other traffic on the host out of the count.
func TestRingBufferFullDropsAreCounted(t *testing.T) {
	testenv.RequireBPF(t)
	port := closedLoopbackPort(t)
	tr, err := Open(Config{RingBufferSize: os.Getpagesize(), Ports: []uint16{port}, PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	const n = 500
	refuseN(t, port, n) // nobody reads yet: the page fills after ~25 records

	var received, lost atomic.Uint64
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // one draining pass, then return
	if err := tr.Run(ctx, Callbacks{
		Event: func(e *event.Event) { received.Add(1) },
		Lost:  func(k uint64) { lost.Add(k) },
	}); err != nil {
		t.Fatal(err)
	}
	st, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("generated %d, received %d, lost %d (kernel: seen %d emitted %d lost %d filtered %d)",
		2*n, received.Load(), lost.Load(), st.Seen, st.Emitted, st.Lost, st.Filtered)
	if lost.Load() == 0 {
		t.Fatal("a one-page ring buffer took a burst of 1000 records without a drop")
	}
	if received.Load()+lost.Load() != 2*n {
		t.Fatalf("received %d + lost %d != generated %d", received.Load(), lost.Load(), 2*n)
	}
	if st.Lost != lost.Load() || st.Emitted != received.Load() {
		t.Fatalf("kernel counters (emitted %d, lost %d) disagree with what was reported", st.Emitted, st.Lost)
	}
}

// Two rstwatch instances at once each see every reset.
func TestTwoInstances(t *testing.T) {
	port := closedLoopbackPort(t)
	a := startCollector(t, Config{Ports: []uint16{port}})
	b := startCollector(t, Config{Ports: []uint16{port}})
	refuseN(t, port, 3)
	for name, c := range map[string]*collector{"first": a, "second": b} {
		deadline := time.Now().Add(3 * time.Second)
		for {
			c.mu.Lock()
			n := len(c.events)
			c.mu.Unlock()
			if n == 6 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s instance saw %d events, want 6", name, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// A connection made before the tracer started: the programs never saw its
// owners connect or accept, so the iterator names them from the processes'
// open files, for the event stream (trace) and the in-kernel counts (serve)
// alike.
func TestStartedAfterTheConnection(t *testing.T) {
	testenv.RequireBPF(t)
	s := startAgent(t, "rstw-server", "")
	c := startAgent(t, "rstw-client", "")
	srv := addrPort(t, s.do("listen 127.0.0.1:0")[0])
	cli := addrPort(t, c.do("connect %s", srv)[0])
	s.do("accept")

	col := startCollector(t, Config{Ports: []uint16{srv.Port()}})
	agg, err := Open(Config{Aggregate: true, NoEvents: true, ZKPorts: []uint16{srv.Port()}})
	if err != nil {
		t.Fatal(err)
	}
	defer agg.Close()

	c.do("write 100")
	time.Sleep(50 * time.Millisecond)
	s.do("close") // unread data: the server resets, in its own context
	sent := col.find(t, event.Send, srv, cli)
	got := col.find(t, event.Receive, cli, srv)
	for _, x := range []struct {
		what string
		e    event.Event
		who  *agent
	}{{"sent", sent, s}, {"received", got, c}} {
		if o := x.e.Owner; o == nil || o.PID != x.who.pid || o.Comm != x.who.name || o.Source != event.OwnerSeeded || !o.Alive {
			t.Errorf("%s: owner %+v, want %d/%s seeded", x.what, o, x.who.pid, x.who.name)
		}
	}

	counts, err := agg.Counts()
	if err != nil {
		t.Fatal(err)
	}
	named := map[event.Direction]uint32{}
	for _, n := range counts {
		if n.ZKEndpoint.Port() == srv.Port() && n.OwnerSource == event.OwnerSeeded {
			named[n.Direction] = n.OwnerPID
		}
	}
	if named[event.Send] != s.pid || named[event.Receive] != c.pid {
		t.Fatalf("aggregated owners %v, want send %d and receive %d (rows %+v)", named, s.pid, c.pid, counts)
	}
}

// Three "hosts" on one bridge: a server and two clients in their own
// network namespaces, rstwatch in the root one. Every event names its
// namespace and the addresses as that namespace sees them, and --netns
// keeps one host's resets only.
func TestThreeHostsOnABridge(t *testing.T) {
	testenv.RequireBPF(t)
	p := fmt.Sprintf("rstb%d", os.Getpid()%100000)
	hosts := []struct{ ns, addr string }{{p + "s", "198.51.100.10"}, {p + "a", "198.51.100.11"}, {p + "b", "198.51.100.12"}}
	br := p + "br"
	t.Cleanup(func() {
		for _, h := range hosts {
			exec.Command("ip", "netns", "del", h.ns).Run()
		}
		exec.Command("ip", "link", "del", br).Run()
	})
	run(t, "ip", "link", "add", br, "type", "bridge")
	run(t, "ip", "link", "set", br, "up")
	for i, h := range hosts {
		run(t, "ip", "netns", "add", h.ns)
		veth, peer := fmt.Sprintf("%sv%d", p, i), fmt.Sprintf("%sp%d", p, i)
		run(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", peer, "netns", h.ns)
		run(t, "ip", "link", "set", veth, "master", br)
		run(t, "ip", "link", "set", veth, "up")
		run(t, "ip", "-n", h.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", h.ns, "link", "set", peer, "address", fmt.Sprintf("02:00:00:00:01:%02x", i))
		run(t, "ip", "-n", h.ns, "addr", "add", h.addr+"/24", "dev", peer)
		run(t, "ip", "-n", h.ns, "link", "set", peer, "up")
	}
	// Static neighbours, so first packets leave from the sender's context.
	for i, h := range hosts {
		for j, o := range hosts {
			if i != j {
				run(t, "ip", "-n", h.ns, "neigh", "replace", o.addr, "lladdr", fmt.Sprintf("02:00:00:00:01:%02x", j),
					"dev", fmt.Sprintf("%sp%d", p, i), "nud", "permanent")
			}
		}
	}
	nsA := nsInode(t, hosts[1].ns)
	all := startCollector(t, Config{})
	onlyA := startCollector(t, Config{NetNS: nsA})

	s := startAgent(t, "rstw-zkserver", hosts[0].ns)
	srv := addrPort(t, s.do("listen %s:0", hosts[0].addr)[0])
	var clients []netip.AddrPort
	for _, h := range hosts[1:] {
		c := startAgent(t, "rstw-zkclient", h.ns)
		cli := addrPort(t, c.do("connect %s", srv)[0])
		s.do("accept")
		c.do("linger0")
		c.do("close")
		clients = append(clients, cli)
	}
	for i, cli := range clients {
		sent := all.find(t, event.Send, cli, srv)
		got := all.find(t, event.Receive, srv, cli)
		if want := nsInode(t, hosts[i+1].ns); sent.NetNS != want {
			t.Errorf("client %d: sent in netns %d, want %d", i, sent.NetNS, want)
		}
		if want := nsInode(t, hosts[0].ns); got.NetNS != want {
			t.Errorf("client %d: received in netns %d, want the server's %d", i, got.NetNS, want)
		}
		if got.Owner == nil || got.Owner.PID != s.pid {
			t.Errorf("client %d: server side owner %+v, want %d", i, got.Owner, s.pid)
		}
	}
	// --netns A: A's sent reset only, not B's, not the server's.
	onlyA.find(t, event.Send, clients[0], srv)
	time.Sleep(100 * time.Millisecond)
	onlyA.mu.Lock()
	defer onlyA.mu.Unlock()
	for _, e := range onlyA.events {
		if e.NetNS != nsA {
			t.Errorf("--netns %d let through an event of netns %d: %s %s -> %s", nsA, e.NetNS, e.Direction, e.Local, e.Remote)
		}
	}
}

// An owner table too small for the sockets made: the kernel counts every
// owner it could not remember, and a reset of such a socket names no owner
// rather than a wrong one.
func TestOwnerTableFull(t *testing.T) {
	col := startCollector(t, Config{OwnerTableSize: 4})
	// Fill the table: each filler holds a connection open, its socket and
	// the accepted one both remembered.
	fs := startAgent(t, "rstw-filler", "")
	fsrv := addrPort(t, fs.do("listen 127.0.0.1:0")[0])
	for range 2 {
		startAgent(t, "rstw-filler", "").do("connect %s", fsrv)
		fs.do("accept")
	}
	s := startAgent(t, "rstw-server", "")
	srv := addrPort(t, s.do("listen 127.0.0.1:0")[0])
	c := startAgent(t, "rstw-client", "")
	var clis []netip.AddrPort
	for range 4 {
		cli := addrPort(t, c.do("connect %s", srv)[0])
		s.do("accept") // the table is full: this owner is not remembered
		s.do("linger0")
		s.do("close")
		clis = append(clis, cli)
	}
	st, err := col.tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.OwnerFull == 0 {
		t.Fatal("a full table of 4 took more owners without counting a failure")
	}
	var unnamed int
	for _, cli := range clis {
		e := col.find(t, event.Send, srv, cli)
		switch {
		case e.Owner == nil:
			unnamed++
		case e.Owner.PID != s.pid:
			t.Errorf("reset to %s names the wrong owner %+v", cli, *e.Owner)
		}
	}
	t.Logf("owner table full %d times; %d of %d resets had no owner to name", st.OwnerFull, unnamed, len(clis))
	if unnamed == 0 {
		t.Fatal("every owner was named though the table was full")
	}
}
