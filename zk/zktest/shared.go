package zktest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Shared keeps one real server per configuration for a whole test binary: a
// JVM start costs seconds on a 2-core machine. Use one per package, from
// TestMain: `code := m.Run(); shared.StopAll(); os.Exit(code)`.
type Shared struct {
	mu      sync.Mutex
	dir     string
	servers map[Options]*sharedServer
}

type sharedServer struct {
	s   *Server
	err error
}

// Get returns the shared server with opts, starting it on first use. It
// skips t (or fails it with RSTWATCH_REQUIRE_ZK=1) when no real server can
// run here.
func (ss *Shared) Get(t testing.TB, opts Options) *Server {
	t.Helper()
	SkipIfUnavailable(t)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.servers == nil {
		ss.servers = map[Options]*sharedServer{}
	}
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
	dir := filepath.Join(ss.dir, fmt.Sprintf("s%d", len(ss.servers)))
	start := time.Now()
	s, err := Launch(dir, opts)
	ss.servers[opts] = &sharedServer{s: s, err: err}
	if err != nil {
		t.Fatalf("real ZooKeeper: %v", err)
	}
	t.Logf("started ZooKeeper %+v at %s (admin %q) in %v", opts, s.ClientAddr, s.AdminAddr, time.Since(start).Round(time.Millisecond))
	return s
}

// StopAll stops every shared server and removes their files.
func (ss *Shared) StopAll() {
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
