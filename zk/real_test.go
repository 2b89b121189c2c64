package zk

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
