package zk

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"

	"github.com/rstwatch/rstwatch/zk/zktest"
)

// One real server per configuration per test binary: a JVM start costs
// seconds on a 2-core machine. TestMain stops them.
type sharedServers struct {
	mu      sync.Mutex
	dir     string
	servers map[zktest.Options]*sharedServer
}

type sharedServer struct {
	s   *zktest.Server
	err error
}

var shared = &sharedServers{servers: map[zktest.Options]*sharedServer{}}

func TestMain(m *testing.M) {
	code := m.Run()
	shared.stopAll()
	os.Exit(code)
}

func (ss *sharedServers) get(t testing.TB, opts zktest.Options) *zktest.Server {
	t.Helper()
	zktest.SkipIfUnavailable(t)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.servers[opts]; ok {
		if s.err != nil {
			t.Fatalf("real ZooKeeper: %v", s.err)
		}
		return s.s
	}
	if ss.dir == "" {
		d, err := os.MkdirTemp("", "rstwatch-zk-")
		if err != nil {
			t.Fatal(err)
		}
		ss.dir = d
	}
	dir := filepath.Join(ss.dir, "s"+string(rune('a'+len(ss.servers))))
	start := time.Now()
	s, err := zktest.Launch(dir, opts)
	ss.servers[opts] = &sharedServer{s: s, err: err}
	if err != nil {
		t.Fatalf("real ZooKeeper: %v", err)
	}
	t.Logf("started ZooKeeper %+v at %s (admin %q) in %v", opts, s.ClientAddr, s.AdminAddr, time.Since(start).Round(time.Millisecond))
	return s
}

func (ss *sharedServers) stopAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, s := range ss.servers {
		if s.s != nil {
			s.s.Stop()
		}
	}
	if ss.dir != "" {
		os.RemoveAll(ss.dir)
	}
}

// allWords is a server answering every word; defaultWL keeps the default
// whitelist (srvr only) and has the AdminServer for the fallback.
func allWords(t testing.TB) *zktest.Server {
	return shared.get(t, zktest.Options{Whitelist: "*", Admin: true})
}

func defaultWL(t testing.TB) *zktest.Server {
	return shared.get(t, zktest.Options{Admin: true})
}

func TestCaptureRealReplies(t *testing.T) {
	if os.Getenv("RSTWATCH_CAPTURE") == "" {
		t.Skip("set RSTWATCH_CAPTURE=1 to refresh testdata from the real server")
	}
	s := allWords(t)
	sess, err := zktest.OpenSession(s.ClientAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	for _, w := range SafeWords() {
		b, err := zktest.FourLetter(s.ClientAddr, w.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join("testdata", "real-3.8.0-"+w.String()+".txt"), b, 0o644)
	}
	var a AdminClient
	for _, c := range []string{"srvr", "stat", "connections", "monitor", "environment", "configuration", "is_read_only", "ruok"} {
		b, err := a.Command(context.Background(), s.AdminAddr, c)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join("testdata", "admin-3.8.0-"+c+".json"), b, 0o644)
	}
	d := defaultWL(t)
	b, _ := zktest.FourLetter(d.ClientAddr, "stat", 5*time.Second)
	os.WriteFile(filepath.Join("testdata", "real-3.8.0-stat-refused.txt"), b, 0o644)
}

func TestRealServerWords(t *testing.T) {
	s := allWords(t)
	ctx := context.Background()
	c := &Client{Timeout: 5 * time.Second}
	sess, err := zktest.OpenSession(s.ClientAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	st, err := c.Srvr(ctx, s.ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version.Short() != "3.8.0" || st.Version.Build != "${mvngit.commit.id}" || st.Mode != "standalone" || !st.AvgDecimal || st.Fingerprint() != "3.6+" {
		t.Errorf("srvr: %+v", st)
	}
	st, err = c.Stat(ctx, s.ClientAddr)
	if err != nil || len(st.Clients) == 0 {
		t.Errorf("stat: %+v %v", st, err)
	}
	cs, err := c.Cons(ctx, s.ClientAddr)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cc := range cs {
		if cc.SessionID == sess.ID && cc.Addr == addrPortOf(sess.Conn.LocalAddr()) {
			found = true
		}
	}
	if !found {
		t.Errorf("session 0x%x at %s not in cons %+v", sess.ID, sess.Conn.LocalAddr(), cs)
	}
	for _, f := range []func(context.Context, string) (map[string]string, error){c.Envi, c.Conf, c.Mntr} {
		if m, err := f(ctx, s.ClientAddr); err != nil || len(m) == 0 {
			t.Errorf("map word: %v", err)
		}
	}
	if err := c.Ruok(ctx, s.ClientAddr); err != nil {
		t.Error(err)
	}
	if ro, err := c.Isro(ctx, s.ClientAddr); err != nil || ro {
		t.Errorf("isro %v %v", ro, err)
	}
}

func TestRealServerDefaultWhitelistAdminFallback(t *testing.T) {
	s := defaultWL(t)
	sess, err := zktest.OpenSession(s.ClientAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	p := NewProber(ProberConfig{Client: &Client{Timeout: 5 * time.Second}})
	si := p.ProbeAll(context.Background(), Target{Client: s.ClientAddr, Admin: s.AdminAddr})
	if !si.Reachable || strings.Join(si.Allowed, ",") != "srvr" || len(si.Refused) != 7 || len(si.AdminUsed) != 7 {
		t.Fatalf("allowed %v refused %v admin %v errors %v", si.Allowed, si.Refused, si.AdminUsed, si.Errors)
	}
	if si.Env["zookeeper.version"] == "" || si.Mntr["server_state"] != "standalone" || si.Conf["client_port"] == "" {
		t.Errorf("admin maps: env %d mntr %d conf %v", len(si.Env), len(si.Mntr), si.Conf)
	}
	if got := p.SessionBefore(s.ClientAddr, addrPortOf(sess.Conn.LocalAddr()), time.Now()); got != (ClientConn{SessionID: sess.ID}).Session() {
		t.Errorf("session via AdminServer connections: %q, want 0x%x", got, sess.ID)
	}
	// Without an AdminServer the refused words are just refused.
	si = p.ProbeAll(context.Background(), Target{Client: s.ClientAddr})
	if len(si.Refused) != 7 || len(si.AdminUsed) != 0 || si.Stats == nil {
		t.Errorf("no admin: %+v", si)
	}
}

// End to end: a real session, a prefetch that sees it, then a reset on that
// connection explained with the session and the real server version.
func TestRealServerEnricher(t *testing.T) {
	s := allWords(t)
	sess, err := zktest.OpenSession(s.ClientAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	srv := netip.MustParseAddrPort(s.ClientAddr)
	e, err := NewEnricher(context.Background(), EnricherConfig{ClientPorts: []uint16{srv.Port()}, Prober: NewProber(ProberConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	e.learn(srv, Target{Client: s.ClientAddr})
	e.Prefetch(context.Background())
	local := addrPortOf(sess.Conn.LocalAddr())
	ev := &event.Event{Time: time.Now(), Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", State: "ESTABLISHED", Local: srv, Remote: local}
	if !e.Enrich(context.Background(), ev) {
		t.Fatal("not enriched")
	}
	want := (ClientConn{SessionID: sess.ID}).Session()
	if ev.ZK.Role != RoleServer || ev.ZK.Session != want || ev.ZK.Mode != "standalone" || ev.Verdict.Code != event.VerdictNotKnownBug {
		t.Errorf("zk %+v verdict %+v, want session %s", ev.ZK, ev.Verdict, want)
	}
	t.Logf("verdict: %s: %s", ev.Verdict.Code, ev.Verdict.Text)
}

func TestRealServerReport(t *testing.T) {
	a, d := allWords(t), defaultWL(t)
	port, _ := zktest.FreePort()
	down := "127.0.0.1:" + itoa(port)
	r := ProbeReport(context.Background(), []string{a.ClientAddr, d.ClientAddr, down}, ReportOptions{
		AdminPort: int(netip.MustParseAddrPort(d.AdminAddr).Port())})
	if !r.AnyUnreachable() || !r.Servers[0].Reachable || !r.Servers[1].Reachable || r.Servers[2].Reachable {
		t.Errorf("reachability: %+v", r.Servers)
	}
	if len(r.Servers[0].Refused) != 0 || len(r.Servers[1].Refused) != 7 || len(r.Servers[1].AdminURLs) != 7 || r.Servers[0].Implies1702 {
		t.Errorf("entries: %+v", r.Servers)
	}
	var text, js strings.Builder
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "3.8.0") || !strings.Contains(js.String(), `"implies_zookeeper_1702": false`) {
		t.Errorf("text:\n%s\njson:\n%s", text.String(), js.String())
	}
	t.Logf("report:\n%s", text.String())
}
