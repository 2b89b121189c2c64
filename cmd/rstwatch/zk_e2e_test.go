package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/testenv"
	"github.com/rstwatch/rstwatch/zk/zktest"
)

type zkLine struct {
	Type      string    `json:"type"`
	Time      time.Time `json:"time"`
	Direction string    `json:"direction"`
	Reason    string    `json:"reason"`
	State     *string   `json:"state"`
	Local     struct {
		Port int `json:"port"`
	} `json:"local"`
	Remote struct {
		Port int `json:"port"`
	} `json:"remote"`
	Owner *struct {
		PID    int    `json:"pid"`
		Comm   string `json:"comm"`
		Alive  bool   `json:"alive"`
		Source string `json:"source"`
	} `json:"owner"`
	ZK *struct {
		Endpoint      string  `json:"endpoint"`
		Role          string  `json:"role"`
		ServerVersion *string `json:"server_version"`
		Mode          *string `json:"mode"`
		Session       *string `json:"session"`
		ClientVersion *string `json:"client_version"`
		ClientRuntime *string `json:"client_runtime"`
		ClientLibrary *string `json:"client_library"`
		ClientPID     *int    `json:"client_pid"`
	} `json:"zk"`
	Verdict *struct {
		Code      string `json:"code"`
		Situation string `json:"situation"`
		Text      string `json:"text"`
		Sender    *struct {
			Reason string `json:"reason"`
			Owner  *struct {
				PID int `json:"pid"`
			} `json:"owner"`
		} `json:"sender"`
	} `json:"verdict"`
}

func zkLines(t *testing.T, out []byte) []zkLine {
	t.Helper()
	var lines []zkLine
	for _, raw := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var l zkLine
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			t.Fatalf("not JSON: %v: %s", err, raw)
		}
		lines = append(lines, l)
	}
	return lines
}

// lingerClose resets a connection from the client side.
func lingerClose(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// closeUnread makes the server answer a ping the client never reads, then
// closes: the client's kernel resets with TCP_ABORT_ON_CLOSE.
func closeUnread(t *testing.T, c net.Conn) {
	t.Helper()
	be := binary.BigEndian
	ping := be.AppendUint32(nil, 8)
	ping = be.AppendUint32(ping, uint32(0xfffffffe)) // xid -2
	ping = be.AppendUint32(ping, 11)                 // OpCode.ping
	if _, err := c.Write(ping); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the reply is queued, unread
	c.Close()
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// A real ZooKeeper 3.8.0: a client that resets its session's connection
// gets the server's version, mode and session, and NOT_KNOWN_BUG with the
// kernel's reason as the hint; the server's side of the same reset is seen
// with role "server".
func TestTraceRealZooKeeper(t *testing.T) {
	testenv.RequireBPF(t)
	srv := zktest.Start(t, zktest.Options{Whitelist: "*"})
	_, portStr, _ := net.SplitHostPort(srv.ClientAddr)
	for _, tc := range []struct {
		name   string
		reset  func(*testing.T, net.Conn)
		reason string
	}{
		{"linger0", lingerClose, "TCP_STATE"},
		{"unread", closeUnread, "TCP_ABORT_ON_CLOSE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// --zk names the server so it is probed (and its sessions listed)
			// before any reset; --zk-port alone learns it from the first.
			s := start(t, "trace", "-o", "json", "--zk", srv.ClientAddr, "--zk-port", portStr, "--zk-discover=false", "--zk-probe-interval", "500ms")
			sess, err := zktest.OpenSession(srv.ClientAddr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			local := sess.Conn.LocalAddr().(*net.TCPAddr).Port
			time.Sleep(1500 * time.Millisecond) // a probe lists the session before the reset
			tc.reset(t, sess.Conn)
			time.Sleep(500 * time.Millisecond)
			if code := s.stop(t, syscall.SIGINT); code != 0 {
				t.Fatalf("exit %d: %s", code, s.stderr)
			}
			var client, server *zkLine
			for _, l := range zkLines(t, s.stdout.Bytes()) {
				if l.Type != "reset" {
					continue
				}
				// Both ends: ephemeral ports are reused by other traffic.
				if l.Direction == "send" && l.Local.Port == local && fmt.Sprint(l.Remote.Port) == portStr {
					client = &l
				}
				if l.Direction == "receive" && l.Remote.Port == local && fmt.Sprint(l.Local.Port) == portStr {
					server = &l
				}
			}
			if client == nil || server == nil {
				t.Fatalf("missing events (client %v, server %v):\n%s", client, server, s.stdout)
			}
			wantSession := fmt.Sprintf("0x%x", sess.ID)
			z := client.ZK
			if z == nil {
				t.Fatalf("client side has no zk object:\n%s", s.stdout)
			}
			if client.Reason != tc.reason || z == nil || z.Role != "client" || z.Endpoint != srv.ClientAddr ||
				str(z.ServerVersion) != "3.8.0" || str(z.Mode) != "standalone" || str(z.Session) != wantSession ||
				z.ClientVersion != nil || client.Verdict == nil || client.Verdict.Code != "NOT_KNOWN_BUG" {
				t.Fatalf("client side: reason %s endpoint %s role %s version %s mode %s session %s (want %s) client %s verdict %+v", client.Reason, z.Endpoint, z.Role, str(z.ServerVersion), str(z.Mode), str(z.Session), wantSession, str(z.ClientVersion), client.Verdict)
			}
			if server.ZK == nil || server.ZK.Role != "server" || server.Verdict == nil || server.Verdict.Code != "NOT_KNOWN_BUG" ||
				server.Owner == nil || server.Owner.PID != srv.PID {
				t.Fatalf("server side: %+v zk %+v verdict %+v", server, server.ZK, server.Verdict)
			}
			t.Logf("verdict: %s", client.Verdict.Text)
		})
	}
}

// A server that says it is 3.4.6 (a scripted fake): the operator's rule
// would infer the known bug from that version, but the client is this Go
// test binary, not the Java client, so ZOOKEEPER-1702 does not apply.
func TestTraceFakeOldZooKeeper(t *testing.T) {
	testenv.RequireBPF(t)
	srvr, err := os.ReadFile(filepath.Join("..", "..", "zk", "wire", "testdata", "3.4.6-srvr.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fake := zktest.ServeFake(t, zktest.Replies(map[string]string{"srvr": string(srvr), "stat": string(srvr)}))
	s := start(t, "trace", "-o", "json", "--zk", fake.Addr, "--zk-discover=false")
	c, err := net.Dial("tcp", fake.Addr)
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().(*net.TCPAddr).Port
	fakePort := c.RemoteAddr().(*net.TCPAddr).Port
	lingerClose(t, c)
	time.Sleep(300 * time.Millisecond)
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	for _, l := range zkLines(t, s.stdout.Bytes()) {
		if l.Type == "reset" && l.Direction == "send" && l.Local.Port == local && l.Remote.Port == fakePort {
			if l.ZK == nil || str(l.ZK.ServerVersion) != "3.4.6" || l.Verdict == nil || l.Verdict.Code != "NOT_KNOWN_BUG" ||
				!strings.Contains(l.Verdict.Text, "not the Java client") || str(l.ZK.ClientRuntime) != "go" {
				t.Fatalf("version %q verdict %+v", str(l.ZK.ServerVersion), l.Verdict)
			}
			t.Logf("verdict: %s", l.Verdict.Text)
			return
		}
	}
	t.Fatalf("no send event from port %d:\n%s", local, s.stdout)
}

// zk probe against a real server and a closed port: the report, and exit 1
// for the unreachable one.
func TestZKProbeCommand(t *testing.T) {
	srv := zktest.Start(t, zktest.Options{Whitelist: "*"})
	out, err := runBinary(t, "zk", "probe", "-o", "json", srv.ClientAddr)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, `"3.8.0`) {
		t.Fatalf("no version in:\n%s", out)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	out, err = runBinary(t, "zk", "probe", srv.ClientAddr, closed)
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit %d with an unreachable server:\n%s", code, out)
	}
	t.Logf("\n%s", out)
}

// rstwatch must never report resets it caused: probing a ZooKeeper server
// that is down gets the probes refused, and none of those resets is shown.
func TestTraceOwnProbesNotReported(t *testing.T) {
	testenv.RequireBPF(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := start(t, "trace", "-o", "json", "--port", fmt.Sprint(port), "--zk", down, "--zk-discover=false", "--zk-probe-interval", "200ms")
	time.Sleep(1500 * time.Millisecond)
	refuse := func() {
		if c, err := net.Dial("tcp", down); err == nil {
			c.Close()
		}
	}
	refuse() // somebody else's refused connect is still reported
	time.Sleep(200 * time.Millisecond)
	if code := s.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	var resets int
	for _, l := range zkLines(t, s.stdout.Bytes()) {
		if l.Type == "reset" {
			resets++
		}
	}
	if resets != 2 {
		t.Fatalf("want exactly the 2 events of the test's own refused connect, got %d:\n%s", resets, s.stdout)
	}
}

// zk probe: bad endpoints are usage errors; a web server is reachable but
// not a ZooKeeper server; a silent one names the timeout actually used.
func TestZKProbeHonesty(t *testing.T) {
	for _, bad := range []string{"nonsense", "127.0.0.1:99999", "127.0.0.1:0", ":2181"} {
		out, err := runBinary(t, "zk", "probe", bad)
		if code := exitCode(err); code != 2 || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("zk probe %s: exit %d, want 2 and one line:\n%s", bad, code, out)
		}
	}
	port, err := zktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	web := exec.Command(zktest.Python3, "-m", "http.server", "--bind", "127.0.0.1", fmt.Sprint(port))
	web.Dir = t.TempDir()
	if err := web.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { web.Process.Kill(); web.Wait() }()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("http.server did not start")
		}
	}
	out, err := runBinary(t, "zk", "probe", "--timeout", "2s", addr)
	if code := exitCode(err); code != 1 || !strings.Contains(out, "reachable, not a ZooKeeper server") || !strings.Contains(out, addr+"  true       false") {
		t.Errorf("http.server: exit %d:\n%s", code, out)
	}
	// Accepted by the kernel, never answered.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err = runBinary(t, "zk", "probe", "--timeout", "1s", ln.Addr().String())
	if code := exitCode(err); code != 1 || !strings.Contains(out, "no complete reply within 1s") {
		t.Errorf("silent server: exit %d:\n%s", code, out)
	}
}

// zk probe reads only the AdminServer of the same server: its own (from
// its zoo.cfg, found on this host) or one given that the same process
// listens on; another server's is refused with the reason.
func TestZKProbeAdminServerOwnership(t *testing.T) {
	a := zktest.Start(t, zktest.Options{Admin: true})
	b := zktest.Start(t, zktest.Options{Admin: true})
	_, aAdmin, _ := net.SplitHostPort(a.AdminAddr)
	out, err := runBinary(t, "zk", "probe", "-o", "json", "--zk-admin-port", aAdmin, b.ClientAddr)
	if err != nil || strings.Contains(out, a.AdminAddr+"/commands") || !strings.Contains(out, "not this server's AdminServer") {
		t.Errorf("another server's AdminServer: %v\n%s", err, out)
	}
	out, err = runBinary(t, "zk", "probe", "-o", "json", b.ClientAddr)
	if err != nil || !strings.Contains(out, `"admin": "`+b.AdminAddr+`"`) {
		t.Errorf("its own AdminServer from its zoo.cfg: %v\n%s", err, out)
	}
	// 0: no AdminServer at all, as in trace and serve.
	out, err = runBinary(t, "zk", "probe", "-o", "json", "--zk-admin-port", "0", b.ClientAddr)
	if err != nil || strings.Contains(out, `"admin"`) || !strings.Contains(out, `"refused": [`) {
		t.Errorf("--zk-admin-port 0: %v\n%s", err, out)
	}
}

// Probes of another rstwatch instance (a zk probe and a second trace, both
// refused by a port where nothing listens) never appear as findings in
// the first instance; a refused connect of somebody else still does.
func TestTraceIgnoresOtherRstwatchProbes(t *testing.T) {
	testenv.RequireBPF(t)
	port, err := zktest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	down := fmt.Sprintf("127.0.0.1:%d", port)
	first := start(t, "trace", "-o", "json", "--port", fmt.Sprint(port), "--zk-port", fmt.Sprint(port), "--zk-discover=false")
	second := start(t, "trace", "-o", "json", "--port", "1", "--zk", down, "--zk-discover=false", "--zk-probe-interval", "200ms")
	for i := 0; i < 3; i++ {
		runBinary(t, "zk", "probe", "--timeout", "1s", down)
	}
	time.Sleep(1500 * time.Millisecond)
	second.stop(t, syscall.SIGINT)
	c, err := net.Dial("tcp", down) // somebody else's refused connect
	if err == nil {
		c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if code := first.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d: %s", code, first.stderr)
	}
	var resets []zkLine
	for _, l := range zkLines(t, first.stdout.Bytes()) {
		if l.Type == "reset" {
			resets = append(resets, l)
		}
	}
	if len(resets) != 2 {
		t.Fatalf("want the 2 rows of the test's own refused connect, got %d:\n%s", len(resets), first.stdout)
	}
	for _, l := range resets {
		if l.Verdict == nil || l.Verdict.Situation != "REFUSED" || l.Direction == "receive" && (l.Owner == nil || l.Owner.Comm != "rstwatch.test") {
			t.Errorf("row %+v verdict %+v", l, l.Verdict)
		}
	}
}
