package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/testenv"
	"github.com/rstwatch/rstwatch/zk/zktest"
)

// End-to-end tests with the real third-party ZooKeeper clients against a
// real 3.8 server: every RST on the wire (tcpdump on lo, filtered to the
// server's port) must be reported by rstwatch trace as a send row and a
// receive row, with the right owner, role, client runtime, and a verdict
// whose situation matches and that is never ZOOKEEPER-1702 for these
// current clients.

// Runtimes rstwatch must report for each client kind.
var wantRuntime = map[string]string{zktest.Java: "java", zktest.C: "native", zktest.Kazoo: "python", zktest.Node: "node"}

// Client libraries and versions rstwatch must read for each kind.
var wantLibrary = map[string][2]string{
	zktest.Java:  {"Apache ZooKeeper Java client", "3.8.0"},
	zktest.C:     {"ZooKeeper C client", "3.8.0"},
	zktest.Kazoo: {"kazoo", ""}, // the Debian version's metadata
	zktest.Node:  {"node-zookeeper-client", "1.1.3"},
}

// rstPacket is one RST seen by tcpdump.
type rstPacket struct {
	src, dst netip.AddrPort
	line     string
	// closedDst: the receiver had sent a FIN on this connection before:
	// its socket may be in TIME_WAIT or gone, where the kernel takes a RST
	// without a tcp_receive_reset event (there is no receiving row).
	closedDst bool
	// closedSrc: the sender had closed this connection before this RST
	// (a FIN or an earlier RST of its on the wire).
	closedSrc bool
	// history is every SYN, FIN and RST of this connection on the wire up to
	// this one: a failure's evidence.
	history []string
}

// zkWatch is one scenario's observers: rstwatch trace and tcpdump.
type zkWatch struct {
	port   int
	trace  *started
	dump   *exec.Cmd
	dumpTo *bytes.Buffer
	// others are more rstwatch instances (run with --debug) whose probes
	// are theirs, not findings.
	others []*started
	// unseen is what the kernel counted as not delivered or not run.
	unseen int
}

// watchZK starts tcpdump on lo for the server's port and rstwatch trace
// naming the server, and waits until both are ready.
func watchZK(t *testing.T, server string, extra ...string) *zkWatch {
	t.Helper()
	testenv.RequireBPF(t)
	tcpdump := testenv.RequireProgram(t, "tcpdump", "tcpdump", zktest.RequireEnv)
	_, ps, _ := net.SplitHostPort(server)
	port, _ := strconv.Atoi(ps)
	w := &zkWatch{port: port, dumpTo: &bytes.Buffer{}}
	// -U: each packet as it comes; text, -tt -nn: parseable.
	w.dump = exec.Command(tcpdump, "-i", "lo", "-nn", "-tt", "-l", "--immediate-mode",
		fmt.Sprintf("tcp port %d and tcp[tcpflags] & (tcp-rst|tcp-fin|tcp-syn) != 0", port))
	var dumpErr bytes.Buffer
	w.dump.Stdout, w.dump.Stderr = w.dumpTo, &dumpErr
	if err := w.dump.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if w.dump.ProcessState == nil {
			w.dump.Process.Kill()
			w.dump.Wait()
		}
	})
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(dumpErr.String(), "listening on"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump not ready: %s", dumpErr.String())
		}
	}
	args := append([]string{"trace", "-o", "json", "--debug", "--port", ps, "--zk", server, "--zk-discover=false", "--zk-probe-interval", "2s"}, extra...)
	w.trace = start(t, args...)
	return w
}

// finish stops both and returns rstwatch's rows, the RSTs on the wire
// (without those of rstwatch's own probes, which it must not report) and
// the probe ports rstwatch logged.
func (w *zkWatch) finish(t *testing.T) ([]zkLine, []rstPacket) {
	t.Helper()
	time.Sleep(700 * time.Millisecond) // the last resets drain
	if code := w.trace.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("trace exit %d: %s", code, w.trace.stderr)
	}
	w.dump.Process.Signal(syscall.SIGINT)
	w.dump.Wait()
	logs := w.trace.stderr.String()
	for _, o := range w.others {
		logs += o.stderr.String()
	}
	probes := probePorts(logs)
	var rsts []rstPacket
	re := regexp.MustCompile(`IP6? (\S+)\.(\d+) > (\S+)\.(\d+): Flags \[([A-Z.]+)\]`)
	finBy := map[[2]netip.AddrPort]bool{}    // (sender, peer) that sent a FIN
	rstBy := map[[2]netip.AddrPort]bool{}    // (sender, peer) that sent an RST
	seen := map[[2]netip.AddrPort][]string{} // (lower, higher port) -> lines
	sc := bufio.NewScanner(bytes.NewReader(w.dumpTo.Bytes()))
	for sc.Scan() {
		m := re.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		src := netip.MustParseAddrPort(net.JoinHostPort(m[1], m[2]))
		dst := netip.MustParseAddrPort(net.JoinHostPort(m[3], m[4]))
		if probes[int(src.Port())] || probes[int(dst.Port())] {
			continue
		}
		conn := [2]netip.AddrPort{src, dst}
		if src.Port() > dst.Port() {
			conn = [2]netip.AddrPort{dst, src}
		}
		seen[conn] = append(seen[conn], sc.Text())
		if strings.Contains(m[5], "F") {
			finBy[[2]netip.AddrPort{src, dst}] = true
		}
		if strings.Contains(m[5], "R") {
			rsts = append(rsts, rstPacket{src: src, dst: dst, line: sc.Text(), closedDst: finBy[[2]netip.AddrPort{dst, src}],
				closedSrc: finBy[[2]netip.AddrPort{src, dst}] || rstBy[[2]netip.AddrPort{src, dst}],
				history:   slices.Clone(seen[conn])})
			rstBy[[2]netip.AddrPort{src, dst}] = true
		}
	}
	var rows []zkLine
	for _, l := range zkLines(t, w.trace.stdout.Bytes()) {
		if l.Type == "reset" {
			rows = append(rows, l)
		}
	}
	// Events the kernel could not deliver (ring buffer full) or programs
	// it skipped (another BPF program on that CPU: the host is busy) are
	// counted, never hidden: rows missing within that count are excused.
	for _, line := range strings.Split(w.trace.stdout.String(), "\n") {
		var sum struct {
			Type         string `json:"type"`
			Lost         int    `json:"lost"`
			KernelMissed int    `json:"kernel_missed"`
		}
		if json.Unmarshal([]byte(line), &sum) == nil && sum.Type == "summary" {
			w.unseen = sum.Lost + sum.KernelMissed
			t.Logf("trace summary: lost %d, kernel_missed %d", sum.Lost, sum.KernelMissed)
		}
	}
	t.Logf("%d RSTs on the wire (rstwatch's own probes excluded), %d rows", len(rsts), len(rows))
	if os.Getenv("RSTWATCH_DEBUG_E2E") != "" {
		t.Logf("trace stderr:\n%s\ntcpdump:\n%s", w.trace.stderr, w.dumpTo)
	}
	if dir := os.Getenv("RSTWATCH_E2E_KEEP"); dir != "" {
		// A flake's evidence, kept whole: every row, packet and log line.
		base := filepath.Join(dir, fmt.Sprintf("%s-%d", t.Name(), time.Now().UnixNano()))
		for ext, b := range map[string][]byte{".json": w.trace.stdout.Bytes(), ".tcpdump": w.dumpTo.Bytes(), ".stderr": w.trace.stderr.Bytes()} {
			if err := os.WriteFile(base+ext, b, 0o644); err != nil {
				t.Log(err)
			}
		}
	}
	return rows, rsts
}

// probePorts are the local ports of rstwatch's probe connections, from
// its --debug log.
func probePorts(stderr string) map[int]bool {
	out := map[int]bool{}
	re := regexp.MustCompile(`msg="ZooKeeper probe connection" local=\S+:(\d+)`)
	for _, m := range re.FindAllStringSubmatch(stderr, -1) {
		p, _ := strconv.Atoi(m[1])
		out[p] = true
	}
	return out
}

// rowPair is the send and receive rows of one RST. recv is nil for an RST
// that found the receiver's socket already reset by an earlier RST on the
// same connection (the receiver takes only the first).
type rowPair struct {
	rst        rstPacket
	send, recv *zkLine
}

// activeReasons are the kernel reasons of resets sent from a full socket by
// tcp_send_active_reset (close, abort, timers): they leave with the
// socket's TCP options (timestamps). Every other reason is a reply built by
// tcp_v4_send_reset/tcp_v6_send_reset from the segment it answers, which
// carries none.
var activeReasons = map[string]bool{
	"TCP_ABORT_ON_CLOSE": true, "TCP_ABORT_ON_LINGER": true, "TCP_ABORT_ON_MEMORY": true,
	"TCP_STATE": true, "TCP_KEEPALIVE_TIMEOUT": true, "TCP_DISCONNECT_WITH_DATA": true,
}

// active says whether tcpdump's line is an active reset (it has TCP
// options, which a reply reset never carries without TCP-MD5/AO).
func (r rstPacket) active() bool { return strings.Contains(r.line, "options [") }

// pairs finds, for every RST on the wire, its own send row (local = the
// RST's source) and its receive row (local = its destination); a missing
// row is a test failure.
//
// One connection can carry several RSTs in one direction within
// microseconds: a server closing a connection with unread data sends one
// (TCP_ABORT_ON_CLOSE), while the client's FIN, crossing it, finds the
// connection gone and is answered by the listener (TCP_FLAGS). Each RST
// then has a send row of its own, told apart by kind (an active reset
// carries TCP options, a reply none) and, within a kind, by order. The
// receiver's socket takes the first RST that reaches it (the first on the
// wire: both leave the same loopback) and is gone for the next, which has
// no receiving row.
func pairs(t *testing.T, rows []zkLine, rsts []rstPacket, unseen int) []rowPair {
	t.Helper()
	type dir struct{ src, dst int }
	sends := map[dir][]*zkLine{}
	recvs := map[dir][]*zkLine{}
	for i := range rows {
		l := &rows[i]
		switch l.Direction {
		case "send":
			k := dir{l.Local.Port, l.Remote.Port}
			sends[k] = append(sends[k], l)
		case "receive":
			k := dir{l.Remote.Port, l.Local.Port}
			recvs[k] = append(recvs[k], l)
		}
	}
	for _, m := range []map[dir][]*zkLine{sends, recvs} {
		for _, ls := range m {
			sort.SliceStable(ls, func(i, j int) bool { return ls[i].Time.Before(ls[j].Time) })
		}
	}
	var out []rowPair
	missing := 0
	taken := map[*zkLine]bool{}
	earlier := map[dir]bool{} // an earlier RST of this direction was received
	for _, r := range rsts {
		k := dir{int(r.src.Port()), int(r.dst.Port())}
		p := rowPair{rst: r}
		for _, l := range sends[k] {
			if !taken[l] && activeReasons[l.Reason] == r.active() {
				p.send = l
				break
			}
		}
		for _, l := range recvs[k] {
			if !taken[l] {
				p.recv = l
				break
			}
		}
		if p.send != nil {
			taken[p.send] = true
		}
		switch {
		case p.recv != nil:
			taken[p.recv] = true
			earlier[k] = true
		case p.send != nil && earlier[k]:
			t.Logf("RST %s: no receiving row; the receiver's socket had taken an earlier RST of this connection and was gone", r.line)
			out = append(out, p)
			continue
		case p.send != nil && r.closedDst:
			t.Logf("RST %s: no receiving row; the receiver had closed (FIN), so its socket took the RST without a receive event", r.line)
			out = append(out, p)
			continue
		}
		if p.send == nil || p.recv == nil {
			if p.send == nil {
				missing++
			}
			if p.recv == nil {
				missing++
			}
			if missing <= unseen {
				t.Logf("RST %s: not reported (send %v, receive %v), within the %d events the kernel counted as lost or missed", r.line, p.send != nil, p.recv != nil, unseen)
				continue
			}
			t.Errorf("RST %s: not reported as send and receive (send %v, receive %v); this connection's SYNs, FINs and RSTs:\n%s",
				r.line, p.send != nil, p.recv != nil, strings.Join(r.history, "\n"))
			if os.Getenv("RSTWATCH_DEBUG_E2E") != "" {
				t.Logf("rows:\n%+v", rows)
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

// sides returns which row of p is the client's (its local port is not the
// server's) and which the server's; the receiving one is nil when the RST
// had no receiving row.
func (p rowPair) sides(serverPort int) (client, server *zkLine) {
	if p.send.Local.Port == serverPort {
		return p.recv, p.send
	}
	return p.send, p.recv
}

// situation is the RST's situation as its sending row says (the receiving
// row, when there is one, must agree: checkPair).
func (p rowPair) situation() string {
	if p.send.Verdict == nil {
		return ""
	}
	return p.send.Verdict.Situation
}

// checkPair checks one RST's rows: roles, owners (the client process for
// its side, a server JVM for the server's, none only for a refused connect),
// the client's runtime where the client is known, the same code and
// situation on both rows, the receiving row naming this RST's sending row,
// never ZOOKEEPER-1702, and a text that matches. An RST without a receiving
// row has its sending row checked alone.
func checkPair(t *testing.T, p rowPair, serverPort int, serverPIDs map[int]bool, clients map[int]*zktest.Client) {
	t.Helper()
	cl, sv := p.sides(serverPort)
	where := p.rst.line
	var present []*zkLine
	for _, l := range []*zkLine{cl, sv} {
		if l == nil {
			continue
		}
		if l.ZK == nil || l.Verdict == nil {
			t.Errorf("%s: row without zk/verdict: %+v", where, l)
			return
		}
		if l.Verdict.Code == "ZOOKEEPER-1702" {
			t.Errorf("%s: ZOOKEEPER-1702 for a current client: %s", where, l.Verdict.Text)
		}
		present = append(present, l)
	}
	if cl != nil && cl.ZK.Role != "client" || sv != nil && sv.ZK.Role != "server" {
		t.Errorf("%s: roles client row %+v, server row %+v", where, cl, sv)
	}
	situation := p.situation()
	if p.recv != nil {
		if p.send.Verdict.Code != p.recv.Verdict.Code || p.send.Verdict.Situation != p.recv.Verdict.Situation {
			t.Errorf("%s: send %s %s (reason %s, state %s, owner %+v), receive %s %s (state %s, owner %+v)", where,
				p.send.Verdict.Situation, p.send.Verdict.Code, p.send.Reason, str(p.send.State), p.send.Owner,
				p.recv.Verdict.Situation, p.recv.Verdict.Code, str(p.recv.State), p.recv.Owner)
		}
		if s := p.recv.Verdict.Sender; s == nil || s.Reason != p.send.Reason || (p.send.Owner == nil) != (s.Owner == nil) || s.Owner != nil && s.Owner.PID != p.send.Owner.PID {
			t.Errorf("%s: the receiving row does not point at this RST's sending row (reason %s, owner %+v): %+v", where, p.send.Reason, p.send.Owner, s)
		}
	}
	c := (*zktest.Client)(nil)
	clientPID := 0
	switch {
	case cl != nil && cl.Owner == nil:
		t.Errorf("%s: client side has no owner (%s: send %s; receive %s); this connection's SYNs, FINs and RSTs:\n%s",
			where, situation, describeRow(p.send), describeRow(p.recv), strings.Join(p.rst.history, "\n"))
	case cl != nil:
		clientPID = cl.Owner.PID
	case sv.ZK.ClientPID != nil:
		// The server's RST had no receiving row: its row names the client.
		clientPID = *sv.ZK.ClientPID
	}
	switch {
	case clientPID == 0:
	case clientPID == os.Getpid():
		// This test binary (zktest's readiness checks): a Go client.
		for _, l := range present {
			if str(l.ZK.ClientRuntime) != "go" {
				t.Errorf("%s: %s row: the test binary's runtime %s", where, l.Direction, str(l.ZK.ClientRuntime))
			}
		}
	default:
		if c = clients[clientPID]; c == nil {
			t.Errorf("%s: client side owned by %d, not a test client", where, clientPID)
		}
	}
	if sv != nil {
		refused := situation == "REFUSED"
		switch {
		case refused && sv.Owner != nil:
			t.Errorf("%s: refused, yet the server side has owner %+v", where, sv.Owner)
		case !refused && (sv.Owner == nil || !serverPIDs[sv.Owner.PID]):
			t.Errorf("%s: server side owner %+v, want the server JVM %v (%s)", where, sv.Owner, serverPIDs, situation)
		}
	}
	if c != nil {
		for _, l := range present {
			if str(l.ZK.ClientRuntime) != wantRuntime[c.Kind] || l.ZK.ClientPID == nil || *l.ZK.ClientPID != c.PID {
				t.Errorf("%s: %s row: client %v runtime %s, want %d %s", where, l.Direction, l.ZK.ClientPID, str(l.ZK.ClientRuntime), c.PID, wantRuntime[c.Kind])
			}
		}
		if cl != nil {
			lib := wantLibrary[c.Kind]
			if str(cl.ZK.ClientLibrary) != lib[0] || lib[1] != "" && str(cl.ZK.ClientVersion) != lib[1] {
				t.Errorf("%s: client library %s %s, want %s %s", where, str(cl.ZK.ClientLibrary), str(cl.ZK.ClientVersion), lib[0], lib[1])
			}
		}
		// These situations exclude 1702 by their mechanism, whatever the
		// client; so does a connection that was never established (a
		// connect answered by an earlier connection's ACK, say).
		excluded := map[string]bool{"REFUSED": true, "LISTENER_CLOSED": true, "KEEPALIVE_TIMEOUT": true, "MEMORY_PRESSURE": true}[situation]
		l := cmp.Or(cl, sv)
		want := "not the Java client"
		if l.State != nil && (*l.State == "SYN_SENT" || *l.State == "SYN_RECV" || *l.State == "NEW_SYN_RECV") {
			want = "this connection was not established"
		}
		if c.Kind != zktest.Java && !excluded && !strings.Contains(l.Verdict.Text, want) {
			t.Errorf("%s: %s client's verdict (%s row) does not say %q: %s", where, c.Kind, l.Direction, want, l.Verdict.Text)
		}
	}
	if want, ok := situationWords[situation]; ok {
		for _, l := range present {
			if !strings.Contains(l.Verdict.Text, want) {
				t.Errorf("%s: %s text lacks %q: %s", where, situation, want, l.Verdict.Text)
			}
		}
	}
}

// situationWords: a phrase each situation's text must contain.
var situationWords = map[string]string{
	"REFUSED":         "found nothing listening",
	"LISTENER_CLOSED": "accept queue",
	"UNREAD_DATA":     "had not read",
	"ABORTIVE_CLOSE":  "aborted the connection",
	"LATE_DATA":       "already closed",
}

func startClients(t *testing.T, server, prefix string, kinds []string) map[int]*zktest.Client {
	t.Helper()
	out := map[int]*zktest.Client{}
	var list []*zktest.Client
	for _, k := range kinds {
		c := zktest.StartClient(t, k, server, "/"+prefix+"-"+k, zktest.ClientOptions{})
		out[c.PID] = c
		list = append(list, c)
	}
	for _, c := range list {
		if err := c.WaitReady(90 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Clients killed with a reply unread: each client is stopped, a watch
// event is sent to it, then it is killed; its kernel resets the connection
// (TCP_ABORT_ON_CLOSE), and the server's row names the client.
func TestZKClientsKilledWithRepliesUnread(t *testing.T) {
	srv := zktest.Start(t, zktest.Options{Whitelist: "*"})
	w := watchZK(t, srv.ClientAddr)
	clients := startClients(t, srv.ClientAddr, "unread", zktest.AllClients)
	creator, err := zktest.OpenSession(srv.ClientAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.Signal(syscall.SIGSTOP)
	}
	for _, c := range clients {
		if err := creator.Create(c.Path); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond) // the events sit unread
	for _, c := range clients {
		c.Kill()
	}
	creator.Close()
	rows, rsts := w.finish(t)
	seen := map[int]bool{}
	for _, p := range pairs(t, rows, rsts, w.unseen) {
		checkPair(t, p, w.port, map[int]bool{srv.PID: true}, clients)
		cl, _ := p.sides(w.port)
		if p.send == cl && cl.Owner != nil && p.send.Reason == "TCP_ABORT_ON_CLOSE" && p.situation() == "UNREAD_DATA" {
			seen[cl.Owner.PID] = true
			if cl.Owner.Alive {
				t.Errorf("%s: the killed client is reported alive", p.rst.line)
			}
		}
	}
	for pid, c := range clients {
		if !seen[pid] {
			t.Errorf("%s client %d: no UNREAD_DATA reset from it; output:\n%s", c.Kind, pid, c.Output())
		}
	}
}

// A normal close: whatever resets the clients' own close paths make
// (cli_mt quits with a reply unread) are reported right; none is 1702.
func TestZKClientsNormalClose(t *testing.T) {
	srv := zktest.Start(t, zktest.Options{Whitelist: "*"})
	w := watchZK(t, srv.ClientAddr)
	clients := startClients(t, srv.ClientAddr, "close", zktest.AllClients)
	for _, c := range clients {
		if err := c.Quit(30 * time.Second); err != nil {
			t.Error(err)
		}
	}
	rows, rsts := w.finish(t)
	for _, p := range pairs(t, rows, rsts, w.unseen) {
		checkPair(t, p, w.port, map[int]bool{srv.PID: true}, clients)
	}
	for _, l := range rows {
		if l.Owner != nil && clients[l.Owner.PID] != nil && clients[l.Owner.PID].Kind != zktest.C && l.Direction == "send" {
			t.Errorf("%s client reset on a normal close: %+v", clients[l.Owner.PID].Kind, l.Verdict)
		}
	}
}

// Refused connects: the clients start while nothing listens. Both rows of
// every refusal are REFUSED, the server side has no owner, the client side
// is the client, and the text says the server was not listening.
func TestZKClientsRefused(t *testing.T) {
	port, err := zktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	server := "127.0.0.1:" + strconv.Itoa(port)
	w := watchZK(t, server)
	clients := map[int]*zktest.Client{}
	for _, k := range zktest.AllClients {
		c := zktest.StartClient(t, k, server, "/refused-"+k, zktest.ClientOptions{})
		clients[c.PID] = c
	}
	time.Sleep(6 * time.Second) // JVM start, then each client retries
	for _, c := range clients {
		c.Kill()
	}
	rows, rsts := w.finish(t)
	refusedBy := map[int]bool{}
	for _, p := range pairs(t, rows, rsts, w.unseen) {
		checkPair(t, p, w.port, nil, clients)
		cl, _ := p.sides(w.port)
		if p.situation() != "REFUSED" {
			t.Errorf("%s: %s", p.rst.line, p.situation())
		}
		if cl == nil || cl.Verdict == nil {
			continue // no receiving row: checkPair said why
		}
		if cl.State == nil || *cl.State != "SYN_SENT" {
			t.Errorf("%s: %s in state %v", p.rst.line, p.situation(), cl.State)
		}
		if !strings.Contains(cl.Verdict.Text, "the server was not listening at the reset") {
			t.Errorf("%s: %s", p.rst.line, cl.Verdict.Text)
		}
		if cl.Owner != nil {
			refusedBy[cl.Owner.PID] = true
		}
	}
	for pid, c := range clients {
		if !refusedBy[pid] {
			t.Errorf("%s client %d: no refused connect seen; output:\n%s", c.Kind, pid, c.Output())
		}
	}
}

// The server hangs (SIGSTOP) with clients connected, more clients connect
// and wait in its accept queue, then it is killed and restarted. Queued
// connections are reset by the kernel in the listener's name
// (LISTENER_CLOSED, owner the server JVM); connections it had not read are
// reset by it (UNREAD_DATA); reconnects while it is down are REFUSED.
func TestZKServerHungKilledRestarted(t *testing.T) {
	srv := zktest.Start(t, zktest.Options{Whitelist: "*"})
	firstPID := srv.PID
	w := watchZK(t, srv.ClientAddr)
	clients := startClients(t, srv.ClientAddr, "hung", zktest.AllClients)
	if err := srv.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for _, k := range zktest.AllClients {
		c := zktest.StartClient(t, k, srv.ClientAddr, "/queued-"+k, zktest.ClientOptions{})
		clients[c.PID] = c
	}
	// The new clients' connections complete in the kernel and wait,
	// unaccepted; the connected ones miss their pings.
	waitQueued(t, srv.ClientAddr, clients, 60*time.Second)
	time.Sleep(2 * time.Second)
	srv.Kill()
	time.Sleep(3 * time.Second) // reconnects are refused
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // clients reconnect
	for _, c := range clients {
		c.Kill()
	}
	rows, rsts := w.finish(t)
	situations := map[string]int{}
	for _, p := range pairs(t, rows, rsts, w.unseen) {
		checkPair(t, p, w.port, map[int]bool{firstPID: true, srv.PID: true}, clients)
		_, sv := p.sides(w.port)
		situations[p.situation()]++
		if s := p.situation(); s != "REFUSED" && s != "LISTENER_CLOSED" {
			t.Logf("%s: %s; send %s; receive %s", p.rst.line, s, describeRow(p.send), describeRow(p.recv))
		}
		if p.situation() == "LISTENER_CLOSED" && (sv == nil || sv.Owner == nil || sv.Owner.Source != "listener") {
			t.Errorf("%s: an unaccepted connection's reset is not the listener's: %+v", p.rst.line, sv.Owner)
		}
	}
	t.Logf("situations: %v", situations)
	for _, s := range []string{"LISTENER_CLOSED", "REFUSED"} {
		if situations[s] == 0 {
			t.Errorf("no %s reset seen", s)
		}
	}
}

// describeRow is what a failure message says of a row.
func describeRow(l *zkLine) string {
	if l == nil {
		return "no row"
	}
	owner := "no owner"
	if l.Owner != nil {
		owner = fmt.Sprintf("owner %d %s (%s)", l.Owner.PID, l.Owner.Comm, l.Owner.Source)
	}
	return fmt.Sprintf("%s :%d->:%d reason %s state %s %s", l.Time.Format("15:04:05.000000"), l.Local.Port, l.Remote.Port, l.Reason, str(l.State), owner)
}

// waitQueued waits until every client that is alive has a connection to
// server in the kernel (ESTABLISHED in its /proc/PID/net/tcp with its own
// socket).
func waitQueued(t *testing.T, server string, clients map[int]*zktest.Client, timeout time.Duration) {
	t.Helper()
	srv := netip.MustParseAddrPort(server)
	deadline := time.Now().Add(timeout)
	for {
		missing := 0
		for pid := range clients {
			if !hasConnection(pid, srv) {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clients have no connection to %s", missing, server)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasConnection reports whether pid holds a socket ESTABLISHED to srv.
func hasConnection(pid int, srv netip.AddrPort) bool {
	inodes := map[string]bool{}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	remote := fmt.Sprintf("0100007F:%04X", srv.Port())
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) > 9 && (fs[2] == remote || strings.HasSuffix(fs[2], fmt.Sprintf("0100007F:%04X", srv.Port()))) && fs[3] == "01" && inodes[fs[9]] {
				return true
			}
		}
	}
	return false
}

// The stand-in 3.4.5 and 3.4.6 Java clients (Debian's 3.8.0 code
// relabelled: the version is what rstwatch reads) against a server that
// refuses them at accept (maxClientCnxns 1 taken by another session): an
// established connection reset during session set-up. The server closes
// with SO_LINGER 0 (ABORTIVE_CLOSE), or, when the client's ConnectRequest
// already sits unread, with TCP_ABORT_ON_CLOSE (UNREAD_DATA, the 1702
// mechanism itself); a client segment crossing the close is then answered
// as LATE_DATA (by the closed socket, or by the listener once the
// connection's socket is gone). 3.4.5 is ZOOKEEPER-1702 on both rows, 3.4.6
// is not.
func TestZKStandInJavaClients1702(t *testing.T) {
	srv := zktest.Start(t, zktest.Options{Whitelist: "*", MaxClientCnxns: 1})
	w := watchZK(t, srv.ClientAddr)
	time.Sleep(500 * time.Millisecond) // rstwatch has asked srvr before the slot is taken
	blocker, err := zktest.OpenSession(srv.ClientAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Close()
	dir := t.TempDir()
	want := map[int]string{}
	clients := map[int]*zktest.Client{}
	for _, v := range []string{"3.4.5", "3.4.6"} {
		jar, err := zktest.StandInJar(dir, v)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := zktest.StandInClasspath(jar)
		if err != nil {
			t.Fatal(err)
		}
		c := zktest.StartClient(t, zktest.Java, srv.ClientAddr, "/standin", zktest.ClientOptions{JavaClasspath: cp})
		clients[c.PID] = c
		want[c.PID] = map[string]string{"3.4.5": "ZOOKEEPER-1702", "3.4.6": "NOT_KNOWN_BUG"}[v]
	}
	time.Sleep(8 * time.Second) // JVM start, then refused at accept and retried
	for _, c := range clients {
		c.Kill()
	}
	rows, rsts := w.finish(t)
	seen := map[int]int{}
	for _, p := range pairs(t, rows, rsts, w.unseen) {
		cl, sv := p.sides(w.port)
		pid := 0
		switch {
		case cl != nil && cl.Owner != nil:
			pid = cl.Owner.PID
		case cl == nil && sv.ZK != nil && sv.ZK.ClientPID != nil:
			pid = *sv.ZK.ClientPID // no receiving row: the server's names the client
		}
		if clients[pid] == nil {
			continue // the blocker
		}
		// The refusal itself is ABORTIVE_CLOSE or UNREAD_DATA; the client's
		// segment crossing it (its ConnectRequest, its FIN) then finds the
		// server's socket closed (TCP_ABORT_ON_DATA, TIME_WAIT) or gone
		// (the listener's TCP_FLAGS): LATE_DATA, from the server, after
		// the server's own FIN or RST on the wire.
		sit := p.situation()
		late := sit == "LATE_DATA" && p.send == sv && p.rst.closedSrc
		if sit != "ABORTIVE_CLOSE" && sit != "UNREAD_DATA" && !late || sv == nil || sv.Owner == nil || sv.Owner.PID != srv.PID {
			t.Errorf("%s: %s, server row %+v", p.rst.line, sit, sv)
		}
		for _, l := range []*zkLine{cl, sv} {
			if l == nil {
				continue
			}
			if l.Verdict.Code != want[pid] {
				t.Errorf("%s: %s row: %s, want %s: %s", p.rst.line, l.Direction, l.Verdict.Code, want[pid], l.Verdict.Text)
			}
		}
		if l := cmp.Or(cl, sv); want[pid] == "ZOOKEEPER-1702" && !strings.Contains(l.Verdict.Text, "the RST came from the server side") {
			t.Errorf("%s: %s", p.rst.line, l.Verdict.Text)
		}
		seen[pid]++
	}
	for pid, c := range clients {
		if seen[pid] == 0 {
			t.Errorf("stand-in client %d: no reset at accept; output:\n%s", pid, c.Output())
		}
	}
}

// serve's verdict labels come from the same classification as trace's:
// for the same resets (clients killed with a reply unread, then the server
// killed and its port refusing reconnects), every ZooKeeper series serve
// exports has the code trace gave the rows with the same labels.
func TestZKServeVerdictsMatchTrace(t *testing.T) {
	srv := zktest.Start(t, zktest.Options{Whitelist: "*"})
	w := watchZK(t, srv.ClientAddr)
	mport, err := zktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	maddr := fmt.Sprintf("127.0.0.1:%d", mport)
	serve := start(t, "serve", "--debug", "--metrics-addr", maddr, "--port", strconv.Itoa(w.port), "--zk", srv.ClientAddr, "--zk-discover=false", "--zk-probe-interval", "2s")
	w.others = append(w.others, serve)
	clients := startClients(t, srv.ClientAddr, "serve", []string{zktest.Kazoo, zktest.C})
	creator, err := zktest.OpenSession(srv.ClientAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		c.Signal(syscall.SIGSTOP)
		if err := creator.Create(c.Path); err != nil {
			t.Fatal(err)
		}
	}
	creator.Close()
	time.Sleep(300 * time.Millisecond)
	for _, c := range clients {
		c.Kill()
	}
	// Refused connects: a client retrying against the dead server.
	retry := zktest.StartClient(t, zktest.Kazoo, srv.ClientAddr, "/serve-retry", zktest.ClientOptions{})
	if err := retry.WaitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	time.Sleep(4 * time.Second)
	retry.Kill()
	rows, rsts := w.finish(t)
	for pid, c := range map[int]*zktest.Client{retry.PID: retry} {
		clients[pid] = c
	}
	for _, p := range pairs(t, rows, rsts, w.unseen) {
		checkPair(t, p, w.port, map[int]bool{srv.PID: true}, clients)
	}
	time.Sleep(500 * time.Millisecond)
	metrics, err := httpGet("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	serve.stop(t, syscall.SIGTERM)

	want := map[string]string{} // labels without verdict → trace's code
	for _, l := range rows {
		if l.ZK == nil || l.Verdict == nil {
			continue
		}
		comm := "unknown"
		if l.Owner != nil {
			comm = l.Owner.Comm
		}
		k := fmt.Sprintf(`direction=%q,owner_comm=%q,reason=%q,zk_endpoint=%q`, l.Direction, comm, l.Reason, l.ZK.Endpoint)
		if prev, ok := want[k]; ok && prev != l.Verdict.Code {
			t.Logf("trace gave %s two codes: %s and %s", k, prev, l.Verdict.Code)
		}
		want[k] = l.Verdict.Code
	}
	// The workload labels (container, namespace, pod, unit) sort around
	// these; this host's processes have none, so they are matched empty.
	re := regexp.MustCompile(`rstwatch_resets_total\{container="",direction="([^"]*)",namespace="",owner_comm="([^"]*)",pod="",reason="([^"]*)",unit="",verdict="([^"]*)",zk_endpoint="([^"]*)"\} (\d+)`)
	matched := 0
	for _, m := range re.FindAllStringSubmatch(metrics, -1) {
		if m[5] != srv.ClientAddr {
			continue
		}
		k := fmt.Sprintf(`direction=%q,owner_comm=%q,reason=%q,zk_endpoint=%q`, m[1], m[2], m[3], m[5])
		code, ok := want[k]
		if !ok {
			t.Errorf("serve has %s (verdict %s) that trace did not report", k, m[4])
			continue
		}
		matched++
		if code != m[4] {
			t.Errorf("%s: serve says %s, trace %s", k, m[4], code)
		}
	}
	if matched < 3 {
		t.Errorf("only %d ZooKeeper series matched; metrics:\n%s\ntrace rows: %v", matched, metrics, want)
	}
	t.Logf("%d series with equal codes", matched)
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
