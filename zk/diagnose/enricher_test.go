package diagnose

import (
	"context"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/zk/hostscan"
	"github.com/rstwatch/rstwatch/zk/wire"
	"github.com/rstwatch/rstwatch/zk/zktest"
)

func TestEnricherFake34(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	fp := zktest.NewFakeProc(t)
	fp.Jar("/opt/a/lib/zookeeper-3.4.5.jar", map[string]string{})
	fp.Proc(zktest.ProcSpec{PID: "4321", Args: []string{"java", "-cp", "/opt/a/lib/zookeeper-3.4.5.jar", "Main"}})
	// A Python process whose environment names the same old jar.
	fp.Proc(zktest.ProcSpec{PID: "4322", Exe: "/usr/bin/python3.11", Args: []string{"python3", "client.py"}, Env: []string{"CLASSPATH=/opt/a/lib/zookeeper-3.4.5.jar"}})

	e := portEnricher(t, srv.Port(), fp.Root)
	ctx := context.Background()

	// This host is the client; the library in the JVM's classpath is
	// 3.4.5; the server closed the established connection.
	ev := &event.Event{Time: time.Now(), Direction: event.Receive, State: "ESTABLISHED", Local: netip.MustParseAddrPort("127.0.0.1:52574"), Remote: srv,
		Owner: &event.Owner{PID: 4321, Comm: "java", Alive: true, Source: event.OwnerSocket}}
	if !e.Enrich(ctx, ev) {
		t.Fatal("not enriched")
	}
	if ev.ZK.Role != RoleClient || ev.ZK.Endpoint != srv || ev.ZK.ClientVersion != "3.4.5" || ev.ZK.ClientRuntime != "java" || ev.ZK.Mode != "follower" ||
		ev.ZK.ServerVersion != "3.4.6" || ev.ZK.ServerVersionAt.IsZero() || ev.Verdict.Code != event.VerdictKnownBug ||
		ev.Verdict.Situation != string(ResetByPeer) || !strings.Contains(ev.Verdict.Text, "java[4321]") {
		t.Errorf("client side: %+v %+v", ev.ZK, ev.Verdict)
	}
	// The same, refused: never 1702.
	ev = &event.Event{Time: time.Now(), Direction: event.Receive, State: "SYN_SENT", Local: netip.MustParseAddrPort("127.0.0.1:52575"), Remote: srv,
		Owner: &event.Owner{PID: 4321, Comm: "java", Alive: true, Source: event.OwnerSocket}}
	if !e.Enrich(ctx, ev) || ev.Verdict.Code != event.VerdictNotKnownBug || ev.Verdict.Situation != string(Refused) {
		t.Errorf("refused: %+v", ev.Verdict)
	}
	// The Python process is not the Java client, whatever its CLASSPATH.
	ev = &event.Event{Time: time.Now(), Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", State: "ESTABLISHED", Local: netip.MustParseAddrPort("127.0.0.1:52576"), Remote: srv,
		Owner: &event.Owner{PID: 4322, Comm: "python3", Alive: true, Source: event.OwnerSocket}}
	if !e.Enrich(ctx, ev) || ev.Verdict.Code != event.VerdictNotKnownBug || ev.ZK.ClientRuntime != "python" || ev.ZK.ClientVersion != "" ||
		!strings.Contains(ev.Verdict.Text, "not the Java client") {
		t.Errorf("python: %+v %+v", ev.ZK, ev.Verdict)
	}

	// This host is the server; client not on this host, server 3.4.6:
	// inferred 1702; the session comes from cons taken before the reset.
	ev = &event.Event{Time: time.Now(), Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", State: "ESTABLISHED", Local: srv, Remote: netip.MustParseAddrPort("10.1.2.3:52574")}
	if !e.Enrich(ctx, ev) {
		t.Fatal("not enriched")
	}
	if ev.ZK.Role != RoleServer || ev.ZK.Session != "0x14a4a8e1e3b0001" || ev.Verdict.Code != event.VerdictKnownBug || !strings.Contains(ev.Verdict.Text, "INFERRED") {
		t.Errorf("server side: %+v %+v", ev.ZK, ev.Verdict)
	}
	// Not ZooKeeper: untouched, nothing probed.
	ev = &event.Event{Direction: event.Send, Local: netip.MustParseAddrPort("127.0.0.1:80"), Remote: netip.MustParseAddrPort("127.0.0.1:40000")}
	if e.Enrich(ctx, ev) || ev.ZK != nil || ev.Verdict != nil {
		t.Errorf("non-ZooKeeper event enriched: %+v", ev)
	}
	if len(e.Servers()) != 1 {
		t.Errorf("servers %+v", e.Servers())
	}
	// rstwatch's own probe connections are recognised and left alone.
	ports := e.Prober().Conns().LocalPorts()
	if len(ports) == 0 {
		t.Fatal("no probe ports recorded")
	}
	own := &event.Event{Direction: event.Send, Local: srv, Remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ports[0])}
	if !e.Skip(own) || e.Enrich(ctx, own) {
		t.Errorf("own probe not recognised (ports %v)", ports)
	}
}

// Both rows of one reset on this host: the receiving row gets the sending
// row's situation and code, and names its owner.
func TestEnricherPairsRows(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	e := portEnricher(t, srv.Port(), t.TempDir())
	cli := netip.MustParseAddrPort("127.0.0.1:40123")
	now := time.Now()
	send := &event.Event{Time: now, Direction: event.Send, Reason: "NO_SOCKET", Local: srv, Remote: cli}
	recv := &event.Event{Time: now.Add(30 * time.Microsecond), Direction: event.Receive, Reason: "UNKNOWN", State: "SYN_SENT", Local: cli, Remote: srv,
		Owner: &event.Owner{PID: 77, Comm: "cli_mt", Alive: false, Source: event.OwnerSocket}}
	e.Enrich(context.Background(), send)
	e.Enrich(context.Background(), recv)
	if send.Verdict.Code != recv.Verdict.Code || send.Verdict.Situation != string(Refused) || recv.Verdict.Situation != string(Refused) {
		t.Errorf("send %+v\nrecv %+v", send.Verdict, recv.Verdict)
	}
	if recv.Verdict.Sender == nil || recv.Verdict.Sender.Reason != "NO_SOCKET" || recv.Verdict.Sender.Owner != nil || recv.Verdict.Sender.Local != srv {
		t.Errorf("sender %+v", recv.Verdict.Sender)
	}
	if !strings.Contains(recv.Verdict.Text, "the sending end is on this host too (no process owned it)") {
		t.Errorf("text: %s", recv.Verdict.Text)
	}
}

// Connected learns the client process while it lives: a reset after it
// exited still names its runtime and library, and the server's row names
// the client through the connection the kernel saw being made.
func TestEnricherConnectedLearnsClient(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	fp := zktest.NewFakeProc(t)
	fp.Jar("/opt/a/lib/zookeeper-3.4.5.jar", map[string]string{})
	fp.Proc(zktest.ProcSpec{PID: "5000", Args: []string{"java", "-cp", "/opt/a/lib/zookeeper-3.4.5.jar", "Main"}})
	e := portEnricher(t, srv.Port(), fp.Root)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e.Start(ctx)
	cli := netip.MustParseAddrPort("127.0.0.1:40200")
	made := time.Now()
	e.Connected(&event.Connect{Time: made, Local: cli, Remote: srv, PID: 5000, TID: 5001, Comm: "java"})
	e.Connected(&event.Connect{Time: made.Add(time.Millisecond), Local: srv, Remote: cli, Accepted: true, PID: 4000, Comm: "java"})
	// The worker reads /proc while the process lives.
	deadline := time.Now().Add(5 * time.Second)
	for {
		e.clients.mu.Lock()
		r := e.clients.procs[5000]
		e.clients.mu.Unlock()
		if r != nil && r.ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("client process not learned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	os.RemoveAll(fp.Root + "/5000") // it exits
	ev := &event.Event{Time: made.Add(50 * time.Millisecond), Direction: event.Send, Reason: "TCP_STATE", State: "CLOSE", Local: srv, Remote: cli,
		Owner: &event.Owner{PID: 4000, Comm: "java", Alive: true, Source: event.OwnerSocket}}
	if !e.Enrich(context.Background(), ev) {
		t.Fatal("not enriched")
	}
	if ev.ZK.ClientPID != 5000 || ev.ZK.ClientVersion != "3.4.5" || ev.ZK.ClientRuntime != "java" || ev.Verdict.Code != event.VerdictKnownBug ||
		!strings.Contains(ev.Verdict.Text, "made 50 ms before the reset") || !strings.Contains(ev.Verdict.Text, "the RST came from the server side") {
		t.Errorf("server row: %+v %+v", ev.ZK, ev.Verdict)
	}
	// A dropped notice is counted, never blocks: fill the queue.
	for i := 0; i < jobQueue*2; i++ {
		e.Connected(&event.Connect{Time: made, Local: netip.AddrPortFrom(cli.Addr(), uint16(41000+i%1000)), Remote: srv, PID: 1})
	}
}

func TestEnricherNamedAndUnreachable(t *testing.T) {
	f := fake353(t)
	e, err := NewEnricher(context.Background(), EnricherConfig{
		Servers: []string{f.Addr, "localhost:1"},
		Prober:  NewProber(ProberConfig{Client: &wire.Client{Timeout: 300 * time.Millisecond}}),
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil // never the network in tests
		},
		Scanner: &hostscan.Scanner{ProcRoot: t.TempDir()},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Prefetch(context.Background())
	ev := &event.Event{Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", State: "ESTABLISHED", Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: netip.MustParseAddrPort(f.Addr)}
	if !e.Enrich(context.Background(), ev) || ev.Verdict.Code != event.VerdictNotKnownBug || ev.ZK.Session != "" {
		t.Errorf("3.5.3 named: %+v %+v", ev.ZK, ev.Verdict)
	}
	// Named but down: still ZooKeeper, verdict UNKNOWN, no hang.
	ev = &event.Event{Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", State: "ESTABLISHED", Local: netip.MustParseAddrPort("127.0.0.1:40001"), Remote: netip.MustParseAddrPort("127.0.0.1:1")}
	start := time.Now()
	if !e.Enrich(context.Background(), ev) || ev.Verdict.Code != event.VerdictUnknown || time.Since(start) > time.Second {
		t.Errorf("down server: %+v %v", ev.Verdict, time.Since(start))
	}
	if e.ErrorCounts()["127.0.0.1:1"] == 0 {
		t.Errorf("error counts %v", e.ErrorCounts())
	}
	if _, err := NewEnricher(context.Background(), EnricherConfig{Servers: []string{"nonsense"}}); err == nil {
		t.Error("bad --zk accepted")
	}
}

// serve's counts are judged by Classify too.
func TestCountVerdict(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	fp := zktest.NewFakeProc(t)
	fp.Proc(zktest.ProcSpec{PID: "4322", Exe: "/usr/bin/python3.11", Args: []string{"python3", "client.py"}})
	e, err := NewEnricher(context.Background(), EnricherConfig{Servers: []string{f.Addr}, Scanner: &hostscan.Scanner{ProcRoot: fp.Root},
		Prober: NewProber(ProberConfig{Client: &wire.Client{Timeout: time.Second}})})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		c    Count
		want string
	}{
		{Count{Direction: event.Send, Reason: "NO_SOCKET", Endpoint: srv}, event.VerdictNotKnownBug},                                                        // refused
		{Count{Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", OwnerPID: 4322, OwnerComm: "python3", Endpoint: srv}, event.VerdictNotKnownBug},         // not Java
		{Count{Direction: event.Receive, Reason: "UNKNOWN", State: "ESTABLISHED", OwnerPID: 9999, OwnerComm: "gone", Endpoint: srv}, event.VerdictKnownBug}, // server 3.4.6, client unknown
		// The kernel's count keeps the state: a refused connect (SYN_SENT)
		// of the same unknown client is never 1702.
		{Count{Direction: event.Receive, Reason: "UNKNOWN", State: "SYN_SENT", OwnerPID: 9999, OwnerComm: "gone", Endpoint: srv}, event.VerdictNotKnownBug},
	} {
		if got := e.CountVerdict(ctx, tc.c); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.c, got, tc.want)
		}
	}
}

// A 4-tuple reused by a new connection attempt: the connection the kernel
// saw made earlier on the same ports (another process's, accepted by the
// server) lends the refused attempt neither its client nor its accept.
func TestEnricherReusedTuple(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	fp := zktest.NewFakeProc(t)
	fp.Proc(zktest.ProcSpec{PID: "6000", Exe: "/usr/lib/zookeeper/bin/cli_mt", Args: []string{"/usr/lib/zookeeper/bin/cli_mt", "-h", f.Addr}})
	fp.Proc(zktest.ProcSpec{PID: "6001", Exe: "/usr/bin/node", Args: []string{"node", "client.js"}})
	e := portEnricher(t, srv.Port(), fp.Root)
	ctx := context.Background()
	t0 := time.Now()
	for i, cli := range []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:36814"), netip.MustParseAddrPort("127.0.0.1:36815")} {
		// cli_mt's connection, accepted by the server, closed with FINs.
		e.Connected(&event.Connect{Time: t0, Local: cli, Remote: srv, PID: 6000, Comm: "cli_mt"})
		e.Connected(&event.Connect{Time: t0.Add(time.Millisecond), Local: srv, Remote: cli, Accepted: true, PID: 4000, Comm: "java"})
		// Seconds later node's connect reuses the ports and is refused.
		at := t0.Add(3 * time.Second)
		send := &event.Event{Time: at, Direction: event.Send, Reason: "NO_SOCKET", Local: srv, Remote: cli}
		recv := &event.Event{Time: at.Add(30 * time.Microsecond), Direction: event.Receive, Reason: "UNKNOWN", State: "SYN_SENT", Local: cli, Remote: srv,
			Owner: &event.Owner{PID: 6001, Comm: "node", Alive: true, Source: event.OwnerSocket}}
		if i == 1 {
			// The node client's own reset in SYN_SENT came first (the
			// server's TIME_WAIT socket answered its SYN with an ACK);
			// the refusal's rows then come in two batches.
			early := &event.Event{Time: at.Add(-10 * time.Millisecond), Direction: event.Send, Reason: "NOT_SPECIFIED", State: "SYN_SENT", Local: cli, Remote: srv,
				Owner: &event.Owner{PID: 6001, Comm: "node", Alive: true, Source: event.OwnerSocket}}
			e.Preview([]*event.Event{early})
			e.Enrich(ctx, early)
			e.Preview([]*event.Event{send})
			e.Enrich(ctx, send)
			e.Preview([]*event.Event{recv})
			e.Enrich(ctx, recv)
		} else {
			e.Preview([]*event.Event{send, recv})
			e.Enrich(ctx, send)
			e.Enrich(ctx, recv)
		}
		for _, ev := range []*event.Event{send, recv} {
			if ev.Verdict.Situation != string(Refused) || ev.ZK.ClientPID == 6000 || ev.ZK.ClientRuntime == "native" ||
				strings.Contains(ev.Verdict.Text, "the connection was made") {
				t.Errorf("%s, %v row: %+v %+v", cli, ev.Direction, ev.ZK, ev.Verdict)
			}
		}
		if i == 0 && (send.ZK.ClientPID != 6001 || send.ZK.ClientRuntime != "node") {
			t.Errorf("%s: the server's row does not name node: %+v", cli, send.ZK)
		}
	}

	// A second accept on the same ports is another connection: its start
	// is its own (a client that is not on this host).
	remote := netip.MustParseAddrPort("10.1.2.3:45000")
	e.Connected(&event.Connect{Time: t0, Local: srv, Remote: remote, Accepted: true, PID: 4000, Comm: "java"})
	e.Connected(&event.Connect{Time: t0.Add(time.Minute), Local: srv, Remote: remote, Accepted: true, PID: 4000, Comm: "java"})
	ev := &event.Event{Time: t0.Add(time.Minute + 20*time.Millisecond), Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", State: "CLOSE", Local: srv, Remote: remote,
		Owner: &event.Owner{PID: 4000, Comm: "java", Alive: true, Source: event.OwnerSocket}}
	if !e.Enrich(ctx, ev) || !strings.Contains(ev.Verdict.Text, "the connection was made 20 ms before the reset") {
		t.Errorf("second accept: %+v", ev.Verdict)
	}
}

// One end sends two resets on a connection microseconds apart: the server
// closes (an active reset, with the connection's timestamp option) and its
// listener answers the client's segment that crossed the close (a reply,
// a bare header); the client's socket takes one. Real orders from
// TestZKStandInJavaClients1702 and TestZKServerHungKilledRestarted, rows
// as the kernel reported them (times in microseconds): whichever the
// socket took, the kernel's timestamp-option fact pairs the receiving row
// with it, in whatever order the rows come; without that fact the nearest
// is taken and the text says it is inferred.
func TestEnricherPairsTheResetTheSocketTook(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	cli := netip.MustParseAddrPort("127.0.0.1:56622")
	jvmOwner := &event.Owner{PID: 5414, Comm: "java", Alive: true, Source: event.OwnerSocket}
	clientOwner := &event.Owner{PID: 5522, Comm: "java", Alive: true, Source: event.OwnerSocket}
	us := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Microsecond) }
	listener := func(at time.Time) *event.Event {
		return &event.Event{Time: at, Direction: event.Send, Reason: "TCP_FLAGS", State: "LISTEN", Local: srv, Remote: cli, Owner: jvmOwner, TSOption: event.TSOptionAbsent}
	}
	closing := func(at time.Time, reason string) *event.Event {
		return &event.Event{Time: at, Direction: event.Send, Reason: reason, State: "CLOSE", Local: srv, Remote: cli, Owner: jvmOwner, TSOption: event.TSOptionPresent}
	}
	received := func(at time.Time, ts event.TSOption) *event.Event {
		return &event.Event{Time: at, Direction: event.Receive, Reason: "UNKNOWN", State: "CLOSE_WAIT", Local: cli, Remote: srv, Owner: clientOwner, TSOption: ts}
	}
	for _, tc := range []struct {
		name      string
		rows      []*event.Event // in the order the kernel reported them
		recv      int            // which is the receiving row
		sender    string         // the sending row's reason it must name
		situation Situation
		inferred  bool
	}{
		{"the close's RST reached it first (linger 0)",
			[]*event.Event{listener(us(283)), received(us(300), event.TSOptionPresent), closing(us(327), "TCP_STATE")}, 1, "TCP_STATE", AbortiveClose, false},
		{"the close's RST reached it first (unread data), rows in another order",
			[]*event.Event{received(us(10), event.TSOptionPresent), listener(us(20)), closing(us(40), "TCP_ABORT_ON_CLOSE")}, 0, "TCP_ABORT_ON_CLOSE", UnreadData, false},
		{"the listener's reply reached it first",
			[]*event.Event{listener(us(331)), received(us(357), event.TSOptionAbsent), closing(us(404), "TCP_ABORT_ON_CLOSE")}, 1, "TCP_FLAGS", LateData, false},
		{"not told (older kernel side): the nearest, inferred",
			[]*event.Event{listener(us(331)), received(us(357), event.TSOptionUnknown), closing(us(404), "TCP_ABORT_ON_CLOSE")}, 1, "TCP_FLAGS", LateData, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := portEnricher(t, srv.Port(), t.TempDir())
			previewAndEnrich(e, tc.rows)
			r := tc.rows[tc.recv]
			if r.Verdict.Sender == nil || r.Verdict.Sender.Reason != tc.sender || r.Verdict.Situation != string(tc.situation) {
				t.Fatalf("receiving row: %s, sender %+v; want %s from %s", r.Verdict.Situation, r.Verdict.Sender, tc.situation, tc.sender)
			}
			for _, s := range tc.rows {
				if s.Direction == event.Send && s.Reason == tc.sender && (s.Verdict.Situation != r.Verdict.Situation || s.Verdict.Code != r.Verdict.Code) {
					t.Errorf("its sending row: %s %s, receiving %s %s", s.Verdict.Situation, s.Verdict.Code, r.Verdict.Situation, r.Verdict.Code)
				}
			}
			if got := strings.Contains(r.Verdict.Text, "which reset this socket took first is not visible"); got != tc.inferred {
				t.Errorf("inferred %v, want %v: %s", got, tc.inferred, r.Verdict.Text)
			}
		})
	}
}

// The receiving socket took a RST with the timestamp option, and the only
// reset traced from that end is a bare reply: the one it took was not
// traced (lost, or made where the TCP stack is not watched). The reply is
// not named as its sender.
func TestEnricherDoesNotPairAContradictedReset(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	cli := netip.MustParseAddrPort("127.0.0.1:56623")
	e := portEnricher(t, srv.Port(), t.TempDir())
	reply := &event.Event{Time: t0, Direction: event.Send, Reason: "TCP_FLAGS", State: "LISTEN", Local: srv, Remote: cli,
		Owner: &event.Owner{PID: 5414, Comm: "java", Alive: true, Source: event.OwnerSocket}, TSOption: event.TSOptionAbsent}
	recv := &event.Event{Time: t0.Add(20 * time.Microsecond), Direction: event.Receive, Reason: "UNKNOWN", State: "CLOSE_WAIT", Local: cli, Remote: srv,
		Owner: &event.Owner{PID: 5522, Comm: "java", Alive: true, Source: event.OwnerSocket}, TSOption: event.TSOptionPresent}
	rows := []*event.Event{reply, recv}
	previewAndEnrich(e, rows)
	if recv.Verdict.Sender != nil {
		t.Errorf("the receiving row is paired with the reply it did not take: %+v", recv.Verdict.Sender)
	}
}

// Where the owners' workloads are known (internal/workload names them
// before this enricher runs), the verdict names the client's pod and the
// server's unit, on both rows of the reset.
func TestEnricherNamesWorkloads(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	cli := netip.MustParseAddrPort("127.0.0.1:56624")
	e := portEnricher(t, srv.Port(), t.TempDir())
	pod := &event.Workload{Cgroup: 7, Path: "/kubepods.slice/x.scope",
		Container: &event.Container{ID: "0123456789abcdef", Runtime: "containerd", Name: "app"},
		Pod:       &event.Pod{Namespace: "shop", Name: "checkout-7d9c", UID: "5f3a", Container: "app"}}
	unit := &event.Workload{Cgroup: 8, Path: "/system.slice/zookeeper.service", Unit: "zookeeper.service"}
	send := &event.Event{Time: t0, Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", State: "CLOSE", Local: srv, Remote: cli,
		Owner: &event.Owner{PID: 5414, Comm: "java", Alive: true, Source: event.OwnerSocket, Workload: unit}, TSOption: event.TSOptionPresent}
	recv := &event.Event{Time: t0.Add(20 * time.Microsecond), Direction: event.Receive, Reason: "UNKNOWN", State: "ESTABLISHED", Local: cli, Remote: srv,
		Owner: &event.Owner{PID: 5522, Comm: "java", Alive: true, Source: event.OwnerSocket, Workload: pod}, TSOption: event.TSOptionPresent}
	rows := []*event.Event{recv, send}
	previewAndEnrich(e, rows)
	for _, ev := range rows {
		for _, want := range []string{"client java[5522] in pod shop/checkout-7d9c (container app)", "java[5414] in unit zookeeper.service"} {
			if !strings.Contains(ev.Verdict.Text, want) {
				t.Errorf("%v row: %q not in %s", ev.Direction, want, ev.Verdict.Text)
			}
		}
	}
}

// portEnricher is an enricher that watches one ZooKeeper client port and
// reads processes under procRoot.
func portEnricher(t *testing.T, port uint16, procRoot string) *Enricher {
	t.Helper()
	e, err := NewEnricher(context.Background(), EnricherConfig{
		ClientPorts: []uint16{port},
		Prober:      NewProber(ProberConfig{Client: &wire.Client{Timeout: time.Second}}),
		Scanner:     &hostscan.Scanner{ProcRoot: procRoot},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// previewAndEnrich hands rows to the enricher as the pipeline does: the
// batch previewed, then each row enriched in order.
func previewAndEnrich(e *Enricher, rows []*event.Event) {
	e.Preview(rows)
	for _, ev := range rows {
		e.Enrich(context.Background(), ev)
	}
}
