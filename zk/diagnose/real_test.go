package diagnose

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/zk/hostscan"
	"github.com/rstwatch/rstwatch/zk/wire"
	"github.com/rstwatch/rstwatch/zk/zktest"
)

// One real server per configuration for this test binary.
var shared zktest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.StopAll()
	os.Exit(code)
}

func allWords(t testing.TB) *zktest.Server {
	return shared.Get(t, zktest.Options{Whitelist: "*", Admin: true})
}

func defaultWL(t testing.TB) *zktest.Server {
	return shared.Get(t, zktest.Options{Admin: true})
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
	e.learn(srv, wire.Target{Client: s.ClientAddr})
	e.Prefetch(context.Background())
	local := netip.MustParseAddrPort(sess.Conn.LocalAddr().String())
	ev := &event.Event{Time: time.Now(), Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", State: "ESTABLISHED", Local: srv, Remote: local}
	if !e.Enrich(context.Background(), ev) {
		t.Fatal("not enriched")
	}
	want := (wire.ClientConn{SessionID: sess.ID}).Session()
	if ev.ZK.Role != RoleServer || ev.ZK.Session != want || ev.ZK.Mode != "standalone" || ev.Verdict.Code != event.VerdictNotKnownBug {
		t.Errorf("zk %+v verdict %+v, want session %s", ev.ZK, ev.Verdict, want)
	}
	t.Logf("verdict: %s: %s", ev.Verdict.Code, ev.Verdict.Text)
}

// zk probe's report: a server with every word, one with the default
// whitelist read through its own AdminServer, one that is down; an
// AdminServer that belongs to another server is not used; a web server is
// "reachable, not a ZooKeeper server"; a hung one names the timeout used.
func TestRealServerReport(t *testing.T) {
	a, d := allWords(t), defaultWL(t)
	port, _ := zktest.FreePort()
	down := "127.0.0.1:" + strconv.Itoa(port)
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	hung := zktest.ServeFake(t, zktest.Silent)
	// A fresh JVM's AdminServer can take seconds to answer its first
	// requests on a loaded machine: a generous timeout for real servers.
	opts := ReportOptions{
		Discovered: []hostscan.Discovered{{PID: d.PID, Client: d.ClientAddr, Admin: d.AdminAddr}},
		Client:     &wire.Client{Timeout: 10 * time.Second},
	}
	r := ProbeReport(context.Background(), []string{a.ClientAddr, d.ClientAddr, down}, opts)
	if !r.AnyUnusable() || !r.Servers[0].Reachable || !r.Servers[1].Reachable || r.Servers[2].Reachable {
		t.Errorf("reachability: %+v", r.Servers)
	}
	if len(r.Servers[0].Refused) != 0 || len(r.Servers[1].Refused) != 7 || len(r.Servers[1].AdminURLs) != 7 ||
		r.Servers[1].Admin != d.AdminAddr || r.Servers[0].Verdict != event.VerdictNotKnownBug {
		t.Errorf("entries: %+v", r.Servers)
	}
	webAddr := strings.TrimPrefix(web.URL, "http://")
	r = ProbeReport(context.Background(), []string{webAddr, hung.Addr}, ReportOptions{Client: &wire.Client{Timeout: 1500 * time.Millisecond}})
	if w := r.Servers[0]; !w.Reachable || w.ZooKeeper || !strings.Contains(w.Error, "reachable, not a ZooKeeper server") || !strings.Contains(w.Error, "malformed") {
		t.Errorf("web server: %+v", w)
	}
	if h := r.Servers[1]; !h.Reachable || h.ZooKeeper || !strings.Contains(h.Error, "reachable, but no answer") || !strings.Contains(h.Error, "no complete reply within 1.5s") {
		t.Errorf("hung server: %+v", h)
	}
	// The other server's AdminServer, asked for explicitly: refused with
	// the reason, the words stay refused.
	opts.AdminPort = netip.MustParseAddrPort(a.AdminAddr).Port()
	r = ProbeReport(context.Background(), []string{d.ClientAddr}, opts)
	if e := r.Servers[0]; e.Admin != "" || len(e.AdminURLs) != 0 || !strings.Contains(e.AdminNote, "not this server's AdminServer (port") || !strings.Contains(e.AdminNote, "belongs to pid") {
		t.Errorf("another server's AdminServer: %+v", e)
	}
	t.Logf("report: %+v", r.Servers)
}
