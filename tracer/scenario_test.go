package tracer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf/btf"
	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// collector runs a tracer and keeps copies of every event.
type collector struct {
	tr     *Tracer
	mu     sync.Mutex
	events []event.Event
	lost   uint64
	// missedAtStart is the kernel's count of skipped program runs when
	// the running scenario began (forEachTopology).
	missedAtStart uint64
	cancel        context.CancelFunc
	done          chan error
}

func startCollector(t testing.TB, cfg Config) *collector {
	t.Helper()
	testenv.RequireBPF(t)
	tr, err := Open(cfg)
	if err != nil {
		var se *SetupError
		if errors.As(err, &se) {
			t.Fatalf("open: %v (%+v)", err, se.Detail)
		}
		t.Fatalf("open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{tr: tr, cancel: cancel, done: make(chan error, 1)}
	go func() {
		c.done <- tr.Run(ctx, Callbacks{Event: func(e *event.Event) {
			cp := *e
			if e.Owner != nil {
				o := *e.Owner
				cp.Owner = &o
			}
			c.mu.Lock()
			c.events = append(c.events, cp)
			c.mu.Unlock()
		}, Lost: func(n uint64) {
			c.mu.Lock()
			c.lost += n
			c.mu.Unlock()
		}})
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *collector) stop(t testing.TB) {
	if c.cancel == nil {
		return
	}
	c.cancel()
	c.cancel = nil
	if err := <-c.done; err != nil {
		t.Errorf("run: %v", err)
	}
	if ps, err := c.tr.ProgramStats(); err == nil {
		for _, p := range ps {
			if p.RecursionMisses > 0 {
				t.Logf("the kernel skipped %s %d times (another BPF program was running on that CPU)", p.Name, p.RecursionMisses)
			}
		}
	}
	if err := c.tr.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// skipped is how many program runs the kernel skipped since the running
// scenario began: another run of the same program was in progress on that
// CPU (an interrupt's softirq changing a socket's state in the middle of a
// state-change program). A skipped state change can cost a connection its
// owner; rstwatch counts it (kernel_missed) and says so.
func (c *collector) skipped() uint64 {
	n, err := c.tr.Missed()
	if err != nil || n < c.missedAtStart {
		return 0
	}
	return n - c.missedAtStart
}

// find waits for the event of a direction between two endpoints, and
// checks that the kernel's one reset is reported once, not by two programs.
func (c *collector) find(t testing.TB, dir event.Direction, local, remote netip.AddrPort) event.Event {
	t.Helper()
	match := func() (first event.Event, n int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.events {
			if e.Direction == dir && e.Local == local && e.Remote == remote {
				if n == 0 {
					first = e
				}
				n++
			}
		}
		return first, n
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if e, n := match(); n > 0 {
			time.Sleep(100 * time.Millisecond) // a duplicate would have arrived by now
			if _, n = match(); n != 1 {
				t.Errorf("%s %s -> %s reported %d times", dir, local, remote, n)
			}
			return e
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var seen []string
	for _, e := range c.events {
		seen = append(seen, fmt.Sprintf("%s %s->%s", e.Direction, e.Local, e.Remote))
	}
	t.Fatalf("no %s event %s -> %s; seen: %v", dir, local, remote, seen)
	return event.Event{}
}

// topology is where the two sides of a scenario run.
type topology struct {
	name                   string
	serverNS, clientNS     string // "" is the root namespace
	serverAddr, clientAddr netip.Addr
	serverNetNS            uint32
	clientNetNS            uint32
}

func nsInode(t testing.TB, name string) uint32 {
	t.Helper()
	path := "/proc/self/ns/net"
	if name != "" {
		path = "/run/netns/" + name
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// twoHosts makes a client and a server "host": two network namespaces
// joined by a veth pair, with documentation-range addresses that exist only
// inside them.
func twoHosts(t testing.TB) (clientNS, serverNS string) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is needed for the namespace tests")
	}
	p := fmt.Sprintf("rstw%d", os.Getpid()%100000)
	clientNS, serverNS = p+"c", p+"s"
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "del", clientNS).Run()
		_ = exec.Command("ip", "netns", "del", serverNS).Run()
	})
	run(t, "ip", "netns", "add", clientNS)
	run(t, "ip", "netns", "add", serverNS)
	run(t, "ip", "link", "add", p+"a", "netns", clientNS, "type", "veth", "peer", "name", p+"b", "netns", serverNS)
	sides := []struct{ ns, dev, v4, v6, mac string }{
		{clientNS, p + "a", "192.0.2.1", "2001:db8::1", "02:00:00:00:00:01"},
		{serverNS, p + "b", "192.0.2.2", "2001:db8::2", "02:00:00:00:00:02"},
	}
	for _, side := range sides {
		run(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", side.ns, "link", "set", side.dev, "address", side.mac)
		run(t, "ip", "-n", side.ns, "addr", "add", side.v4+"/24", "dev", side.dev)
		run(t, "ip", "-n", side.ns, "addr", "add", side.v6+"/64", "dev", side.dev, "nodad")
		run(t, "ip", "-n", side.ns, "link", "set", side.dev, "up")
	}
	// Static neighbours: a first packet that waits for ARP or neighbour
	// discovery leaves in a timer's context, and the scenarios assert
	// which task the kernel was running.
	for i, side := range sides {
		peer := sides[1-i]
		run(t, "ip", "-n", side.ns, "neigh", "replace", peer.v4, "lladdr", peer.mac, "dev", side.dev, "nud", "permanent")
		run(t, "ip", "-n", side.ns, "neigh", "replace", peer.v6, "lladdr", peer.mac, "dev", side.dev, "nud", "permanent")
	}
	return clientNS, serverNS
}

func topologies(t *testing.T) []topology {
	testenv.RequireBPF(t)
	root := nsInode(t, "")
	clientNS, serverNS := twoHosts(t)
	cn, sn := nsInode(t, clientNS), nsInode(t, serverNS)
	return []topology{
		{"loopback/ipv4", "", "", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.1"), root, root},
		{"loopback/ipv6", "", "", netip.MustParseAddr("::1"), netip.MustParseAddr("::1"), root, root},
		{"netns/ipv4", serverNS, clientNS, netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.1"), sn, cn},
		{"netns/ipv6", serverNS, clientNS, netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::1"), sn, cn},
	}
}

// want is what a scenario expects of one event.
type want struct {
	reason     string
	state      string
	netns      uint32
	task       *agent // nil: no assertion (see the scenario)
	owner      *agent // nil: owner must be null
	ownerAlive bool
	// ts: whether the RST carried the timestamp option (connections
	// here negotiate timestamps, the kernel's default).
	ts event.TSOption
}

// reason is what this kernel says for a sent reset (reasonOn).
func (c *collector) reason(name string) string { return reasonOn(c.tr, name) }

// reasonOn is what tr's kernel says for a sent reset of reason name:
// kernels before 6.10 report none.
func reasonOn(tr *Tracer, name string) string {
	if !tr.ReportsReasons() {
		return "UNKNOWN"
	}
	return name
}

func check(t *testing.T, col *collector, what string, e event.Event, w want) {
	t.Helper()
	if e.Reason != w.reason {
		t.Errorf("%s: reason %q, want %q", what, e.Reason, w.reason)
	}
	if w.state != "" && e.State != w.state {
		t.Errorf("%s: state %q, want %q", what, e.State, w.state)
	}
	if e.NetNS != w.netns {
		t.Errorf("%s: netns %d, want %d", what, e.NetNS, w.netns)
	}
	if e.TSOption != w.ts {
		t.Errorf("%s: timestamp option %d, want %d", what, e.TSOption, w.ts)
	}
	// A segment that crosses loopback or a veth is delivered by the softirq
	// its send raised: on the sender's CPU when it re-enables bottom halves,
	// or by ksoftirqd when the kernel is deferring softirqs (seen on 6.1
	// under qemu's emulated CPU). Either is the task the kernel ran it in.
	deferred := e.Direction == event.Receive && strings.HasPrefix(e.Task.Comm, "ksoftirqd/")
	if deferred && w.task != nil {
		t.Logf("%s: delivered by %d/%s (deferred softirq), not in %d/%s", what, e.Task.PID, e.Task.Comm, w.task.pid, w.task.name)
	}
	if w.task != nil && !deferred && (e.Task.PID != w.task.pid || e.Task.Comm != w.task.name) {
		t.Errorf("%s: task %d/%s, want %d/%s", what, e.Task.PID, e.Task.Comm, w.task.pid, w.task.name)
	}
	var skipped uint64
	if w.owner != nil && e.Owner == nil {
		skipped = col.skipped()
	}
	switch {
	case w.owner == nil && e.Owner != nil:
		t.Errorf("%s: owner %+v, want none", what, *e.Owner)
	case w.owner != nil && e.Owner == nil && skipped > 0:
		// Counted, never hidden: the run that would have named it may be
		// one the kernel skipped.
		t.Logf("%s: no owner, want %d/%s; the kernel skipped %d program runs during this scenario, which rstwatch reports (kernel_missed)",
			what, w.owner.pid, w.owner.name, skipped)
	case w.owner != nil && e.Owner == nil:
		t.Errorf("%s: no owner, want %d/%s", what, w.owner.pid, w.owner.name)
	case w.owner != nil:
		if e.Owner.PID != w.owner.pid || e.Owner.Comm != w.owner.name || e.Owner.Alive != w.ownerAlive {
			t.Errorf("%s: owner %d/%s alive=%v, want %d/%s alive=%v", what,
				e.Owner.PID, e.Owner.Comm, e.Owner.Alive, w.owner.pid, w.owner.name, w.ownerAlive)
		}
	}
	if !t.Failed() {
		t.Logf("%s: %s %s -> %s state=%s reason=%s task=%d/%s owner=%v", what, e.Direction, e.Local, e.Remote,
			e.State, e.Reason, e.Task.PID, e.Task.Comm, e.Owner)
	}
}

func addrPort(t testing.TB, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// connected sets up server s listening and client c connected to it, and
// returns the client's and the server's endpoints.
func connected(t *testing.T, top topology, s, c *agent) (cli, srv netip.AddrPort) {
	t.Helper()
	srv = addrPort(t, s.do("listen %s", netip.AddrPortFrom(top.serverAddr, 0))[0])
	cli = addrPort(t, c.do("connect %s", srv)[0])
	s.do("accept")
	return cli, srv
}

// programKinds are the two sets of programs every scenario runs with: the
// BTF-typed ones rstwatch prefers and the classic tracepoints it falls
// back to.
var programKinds = []struct {
	name    string
	classic bool
}{{"typed", false}, {"classic", true}}

// typedAcceptHere says whether this kernel can run the typed accept, which
// needs the bpf_rdonly_cast kfunc (6.2+); its BTF is parsed once.
var typedAcceptHere = sync.OnceValue(func() bool {
	kspec, err := btf.LoadKernelSpec()
	return err == nil && typedPointExists(kspec, AttachPoint{Group: "syscalls", Name: "sys_exit_accept4"})
})

// requireKind fails unless the tracer attached the kind of programs asked
// for: a typed program that silently fell back would leave the fast path
// untested. Every kernel rstwatch supports (5.8+) loads tp_btf programs.
func requireKind(t testing.TB, tr *Tracer, classic bool) {
	t.Helper()
	progs := tr.TypedPrograms()
	names := []string{rstwatchProgRstwatchSendResetBtf, rstwatchProgRstwatchReceiveResetBtf, rstwatchProgRstwatchSetStateBtf}
	if typedAcceptHere() {
		names = append(names, rstwatchProgRstwatchAccept4Btf)
	}
	for _, name := range names {
		if classic && progs[name] || !classic && !progs[name] {
			t.Fatalf("wanted classic=%v programs, attached %v (degraded: %q)", classic, progs, tr.Degraded())
		}
	}
}

func forEachTopology(t *testing.T, f func(t *testing.T, top topology, col *collector)) {
	tops := topologies(t)
	for _, kind := range programKinds {
		t.Run(kind.name, func(t *testing.T) {
			col := startCollector(t, Config{ClassicTracepoints: kind.classic})
			requireKind(t, col.tr, kind.classic)
			for _, top := range tops {
				t.Run(top.name, func(t *testing.T) {
					col.missedAtStart, _ = col.tr.Missed()
					f(t, top, col)
					if t.Failed() {
						// A failure's context: what the kernel counted.
						st, err := col.tr.Stats()
						missed, merr := col.tr.Missed()
						t.Logf("tracer: %+v (%v); program runs skipped by the kernel: %d (%v)", st, err, missed, merr)
					}
				})
			}
		})
	}
}

// A connect to a port nobody listens on: the kernel answers the SYN with a
// reset that no process owns; the client's socket receives it.
func TestRefusedConnect(t *testing.T) {
	forEachTopology(t, func(t *testing.T, top topology, col *collector) {
		s := startAgent(t, "rstw-server", top.serverNS)
		c := startAgent(t, "rstw-client", top.clientNS)
		// A port that was just listening and is closed now is free.
		closed := addrPort(t, s.do("listen %s", netip.AddrPortFrom(top.serverAddr, 0))[0])
		s.do("closelistener")
		f, status := c.try("connect %s", closed)
		if status != "refused" {
			t.Fatalf("connect to closed port: %s %v", status, f)
		}
		// The client's port is only known from the events themselves.
		var cli netip.AddrPort
		deadline := time.Now().Add(3 * time.Second)
		for !cli.IsValid() && time.Now().Before(deadline) {
			col.mu.Lock()
			for _, e := range col.events {
				if e.Direction == event.Receive && e.Remote == closed {
					cli = e.Local
				}
			}
			col.mu.Unlock()
			time.Sleep(10 * time.Millisecond)
		}
		if !cli.IsValid() {
			t.Fatal("no receive event for the refused connect")
		}
		sent := col.find(t, event.Send, closed, cli)
		check(t, col, "sent", sent, want{reason: col.reason("NO_SOCKET"), netns: top.serverNetNS, task: c, ts: event.TSOptionAbsent})
		got := col.find(t, event.Receive, cli, closed)
		check(t, col, "received", got, want{reason: "UNKNOWN", state: "SYN_SENT", netns: top.clientNetNS, task: c, owner: c, ownerAlive: true, ts: event.TSOptionAbsent})
	})
}

// SO_LINGER {1, 0} then close: the closing process sends the reset itself.
// The kernel aborts through tcp_disconnect, whose reason is TCP_STATE
// (TCP_ABORT_ON_LINGER is the FIN_WAIT2 linger2 timeout).
func TestLingerZeroClose(t *testing.T) {
	forEachTopology(t, func(t *testing.T, top topology, col *collector) {
		s := startAgent(t, "rstw-server", top.serverNS)
		c := startAgent(t, "rstw-client", top.clientNS)
		cli, srv := connected(t, top, s, c)
		c.do("linger0")
		c.do("close")
		sent := col.find(t, event.Send, cli, srv)
		check(t, col, "sent", sent, want{reason: col.reason("TCP_STATE"), netns: top.clientNetNS, task: c, owner: c, ownerAlive: true, ts: event.TSOptionPresent})
		// The server process receives a reset another local process sent.
		got := col.find(t, event.Receive, srv, cli)
		check(t, col, "received", got, want{reason: "UNKNOWN", state: "ESTABLISHED", netns: top.serverNetNS, task: c, owner: s, ownerAlive: true, ts: event.TSOptionPresent})
	})
}

// Closing with unread data in the receive queue makes the kernel reset.
func TestCloseWithUnreadData(t *testing.T) {
	forEachTopology(t, func(t *testing.T, top topology, col *collector) {
		s := startAgent(t, "rstw-server", top.serverNS)
		c := startAgent(t, "rstw-client", top.clientNS)
		cli, srv := connected(t, top, s, c)
		c.do("write 100")
		time.Sleep(50 * time.Millisecond) // let the data reach the server's queue
		s.do("close")
		sent := col.find(t, event.Send, srv, cli)
		check(t, col, "sent", sent, want{reason: col.reason("TCP_ABORT_ON_CLOSE"), netns: top.serverNetNS, task: s, owner: s, ownerAlive: true, ts: event.TSOptionPresent})
		got := col.find(t, event.Receive, cli, srv)
		check(t, col, "received", got, want{reason: "UNKNOWN", state: "ESTABLISHED", netns: top.clientNetNS, task: s, owner: c, ownerAlive: true, ts: event.TSOptionPresent})
	})
}

// Data for a connection its owner already closed: the reset is sent in the
// context of the process whose data arrived, and must name the owner that
// closed, alive or exited. The closed socket has usually become a timewait
// socket, which answers; but when the acknowledgement of its FIN arrived
// while close() still held the socket, the kernel keeps a full orphaned
// socket in FIN_WAIT2 instead, which it destroys on the data and then
// answers for (TCP_ABORT_ON_DATA, from state CLOSE): a race on a busy host.
// With TCP_LINGER2 above 60 s the second way is certain ("fin-wait2").
func TestLateDataAfterClose(t *testing.T) {
	for _, c := range []struct {
		name           string
		exited, linger bool
	}{{"owner-alive", false, false}, {"owner-exited", true, false}, {"fin-wait2/owner-alive", false, true}, {"fin-wait2/owner-exited", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			forEachTopology(t, func(t *testing.T, top topology, col *collector) {
				s := startAgent(t, "rstw-server", top.serverNS)
				cl := startAgent(t, "rstw-client", top.clientNS)
				cli, srv := connected(t, top, s, cl)
				if c.linger {
					cl.do("finwait2")
				}
				cl.do("close")
				if c.exited {
					cl.exit()
				}
				time.Sleep(50 * time.Millisecond) // the FIN is acknowledged
				s.do("write 10")
				sent := col.find(t, event.Send, cli, srv)
				w := want{reason: col.reason("TCP_TIMEWAIT_SOCKET"), state: "TIME_WAIT", netns: top.clientNetNS, task: s, owner: cl, ownerAlive: !c.exited, ts: event.TSOptionAbsent}
				if c.linger || sent.State == "CLOSE" {
					w.reason, w.state = col.reason("TCP_ABORT_ON_DATA"), "CLOSE"
				}
				check(t, col, "sent", sent, w)
				if sent.Owner != nil && sent.Owner.Source != event.OwnerTuple {
					t.Errorf("sent: owner source %s, want tuple", sent.Owner.Source)
				}
				got := col.find(t, event.Receive, srv, cli)
				check(t, col, "received", got, want{reason: "UNKNOWN", netns: top.serverNetNS, task: s, owner: s, ownerAlive: true, ts: event.TSOptionAbsent})
			})
		})
	}
}

// A socket shut down for reading and writing but not closed, as ZooKeeper's
// Java client and server leave theirs just before close(): data that
// arrives makes the kernel abort it (TCP_ABORT_ON_DATA), which fires the
// receive tracepoint on the way although no reset was received. The
// abort's own reset is reported with its owner; that receive is not. The
// peer's segments already on their way find no socket: their resets name
// the owner too (kept under the 4-tuple).
func TestAbortOnDataAfterShutdown(t *testing.T) {
	forEachTopology(t, func(t *testing.T, top topology, col *collector) {
		if !col.tr.ReportsReasons() && !col.tr.UsesFentryFallback() {
			t.Skip("this kernel does not report the resets its TCP stack sends in reply to a segment")
		}
		s := startAgent(t, "rstw-server", top.serverNS)
		cl := startAgent(t, "rstw-client", top.clientNS)
		cli, srv := connected(t, top, s, cl)
		cl.do("shutdown")
		time.Sleep(50 * time.Millisecond) // the FIN is acknowledged
		// Many segments in one write: the first is answered by the abort,
		// the ones behind it by the kernel finding no socket. The write
		// itself may fail on the reset.
		s.try("write 300000")
		got := col.find(t, event.Receive, srv, cli)
		check(t, col, "received", got, want{reason: "UNKNOWN", netns: top.serverNetNS, owner: s, ownerAlive: true, ts: event.TSOptionAbsent})
		time.Sleep(300 * time.Millisecond) // every reset is in
		col.mu.Lock()
		defer col.mu.Unlock()
		var sends []event.Event
		for _, e := range col.events {
			switch {
			case e.Direction == event.Receive && e.Local == cli && e.Remote == srv:
				t.Errorf("a receive reported for the client's own abort: %+v", e)
			case e.Direction == event.Send && e.Local == cli && e.Remote == srv:
				sends = append(sends, e)
			}
		}
		if len(sends) == 0 {
			t.Fatal("the client's abort was not reported")
		}
		for i, e := range sends {
			w := want{reason: col.reason("NO_SOCKET"), netns: top.clientNetNS, owner: cl, ownerAlive: true, ts: event.TSOptionAbsent}
			source := event.OwnerTuple
			if i == 0 {
				w.reason, w.state, source = col.reason("TCP_ABORT_ON_DATA"), "CLOSE", event.OwnerSocket
			}
			check(t, col, fmt.Sprintf("sent #%d", i+1), e, w)
			if e.Owner != nil && e.Owner.Source != source {
				t.Errorf("sent #%d: owner source %s, want %s", i+1, e.Owner.Source, source)
			}
		}
		t.Logf("%d resets from the client: the abort, then %d for segments that found no socket", len(sends), len(sends)-1)
	})
}

// A listener that closes (or whose process is killed) resets the
// connections still waiting in its accept queue, after its own state
// change: each reset names the listening process, which never accepted
// them.
func TestListenerClosedWithQueuedConnections(t *testing.T) {
	for _, killed := range []bool{false, true} {
		name := "listener-closed"
		if killed {
			name = "listener-killed"
		}
		t.Run(name, func(t *testing.T) {
			forEachTopology(t, func(t *testing.T, top topology, col *collector) {
				s := startAgent(t, "rstw-server", top.serverNS)
				c := startAgent(t, "rstw-client", top.clientNS)
				srv := addrPort(t, s.do("listen %s", netip.AddrPortFrom(top.serverAddr, 0))[0])
				cli := addrPort(t, c.do("connect %s", srv)[0]) // queued, never accepted
				if killed {
					s.kill()
				} else {
					s.do("closelistener")
				}
				sent := col.find(t, event.Send, srv, cli)
				// A killed process's exit is marked before its
				// files are closed: the owner has exited by then.
				if o := sent.Owner; o == nil || o.PID != s.pid || o.Comm != s.name || o.Source != event.OwnerListener || o.Alive == killed {
					t.Errorf("sent: owner %+v, want the listener %d/%s alive=%v", o, s.pid, s.name, !killed)
				}
				if sent.Reason != col.reason("TCP_STATE") || sent.NetNS != top.serverNetNS || sent.TSOption != event.TSOptionPresent {
					t.Errorf("sent: reason %s netns %d timestamp option %d, want %s %d %d", sent.Reason, sent.NetNS, sent.TSOption, col.reason("TCP_STATE"), top.serverNetNS, event.TSOptionPresent)
				}
				got := col.find(t, event.Receive, cli, srv)
				check(t, col, "received", got, want{reason: "UNKNOWN", state: "ESTABLISHED", netns: top.clientNetNS, owner: c, ownerAlive: true, ts: event.TSOptionPresent})
				t.Logf("sent: %s -> %s state=%s task=%d/%s owner=%+v", sent.Local, sent.Remote, sent.State, sent.Task.PID, sent.Task.Comm, *sent.Owner)
			})
		})
	}
}
