package wire

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/zk/zktest"
)

// One real server per configuration for this test binary.
var shared zktest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	shared.StopAll()
	os.Exit(code)
}

// allWords is a server answering every word; defaultWL keeps the default
// whitelist (srvr only) and has the AdminServer for the fallback.
func allWords(t testing.TB) *zktest.Server {
	return shared.Get(t, zktest.Options{Whitelist: "*", Admin: true})
}

func defaultWL(t testing.TB) *zktest.Server {
	return shared.Get(t, zktest.Options{Admin: true})
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
	c := &Client{Timeout: 5 * time.Second}
	si := Probe(context.Background(), c, &AdminClient{}, Target{Client: s.ClientAddr, Admin: s.AdminAddr}, SafeWords(), time.Now())
	if !si.Reachable || strings.Join(si.Allowed, ",") != "srvr" || len(si.Refused) != 7 || len(si.AdminUsed) != 7 {
		t.Fatalf("allowed %v refused %v admin %v errors %v", si.Allowed, si.Refused, si.AdminUsed, si.Errors)
	}
	if si.Env["zookeeper.version"] == "" || si.Mntr["server_state"] != "standalone" || si.Conf["client_port"] == "" {
		t.Errorf("admin maps: env %d mntr %d conf %v", len(si.Env), len(si.Mntr), si.Conf)
	}
	found := false
	for _, cc := range si.Clients {
		found = found || cc.SessionID == sess.ID && cc.Addr == addrPortOf(sess.Conn.LocalAddr())
	}
	if !found {
		t.Errorf("session 0x%x not in the AdminServer's connections %+v", sess.ID, si.Clients)
	}
	// Without an AdminServer the refused words are just refused.
	si = Probe(context.Background(), c, &AdminClient{}, Target{Client: s.ClientAddr}, SafeWords(), time.Now())
	if len(si.Refused) != 7 || len(si.AdminUsed) != 0 || si.Stats == nil {
		t.Errorf("no admin: %+v", si)
	}
}
