package diagnose

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/zk/wire"
	"github.com/rstwatch/rstwatch/zk/zktest"
)

// fakeAdmin serves the real 3.8.0 AdminServer answers on 127.0.0.1.
func fakeAdmin(t testing.TB, hits *atomic.Int32) *httptest.Server {
	files := map[string]string{
		"/commands/srvr": "admin-3.8.0-srvr.json", "/commands/stat": "admin-3.8.0-stat.json",
		"/commands/connections": "admin-3.8.0-connections.json", "/commands/monitor": "admin-3.8.0-monitor.json",
		"/commands/environment": "admin-3.8.0-environment.json", "/commands/configuration": "admin-3.8.0-configuration.json",
		"/commands/is_read_only": "admin-3.8.0-is_read_only.json", "/commands/ruok": "admin-3.8.0-ruok.json",
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(readTestdata(t, f))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestProberAdminFallback(t *testing.T) {
	f := fake353(t)
	var hits atomic.Int32
	admin := fakeAdmin(t, &hits)
	p := NewProber(ProberConfig{Client: &wire.Client{Timeout: time.Second}})
	adminAddr := strings.TrimPrefix(admin.URL, "http://")
	si := p.ProbeAll(context.Background(), wire.Target{Client: f.Addr, Admin: adminAddr})
	if !si.Reachable || si.Stats == nil || si.Stats.Version.Short() != "3.5.3-beta" || si.Mode != "leader" {
		t.Fatalf("info: %+v", si)
	}
	if strings.Join(si.Allowed, ",") != "srvr" || len(si.Refused) != 7 {
		t.Errorf("allowed %v refused %v", si.Allowed, si.Refused)
	}
	if len(si.AdminUsed) != 7 || si.Env["java.version"] == "" || si.Mntr["server_state"] != "standalone" || len(si.Clients) != 1 {
		t.Errorf("admin fallback: used %v env %d clients %+v errors %v", si.AdminUsed, len(si.Env), si.Clients, si.Errors)
	}
	// srvr from 4lw wins over the AdminServer's stat.
	if si.VersionSource() != "srvr on "+f.Addr {
		t.Errorf("version source %q", si.VersionSource())
	}
}

func TestProberCacheSingleflightRateLimit(t *testing.T) {
	var conns atomic.Int32
	srvr := string(readTestdata(t, "3.4.6-srvr.txt"))
	cons := string(readTestdata(t, "3.4.6-cons.txt"))
	f := zktest.ServeFake(t, func(w string, c net.Conn) {
		conns.Add(1)
		time.Sleep(50 * time.Millisecond) // let concurrent callers pile up
		switch w {
		case "srvr":
			c.Write([]byte(srvr))
		case "cons":
			c.Write([]byte(cons))
		}
	})
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p := NewProber(ProberConfig{Client: &wire.Client{Timeout: time.Second}, TTL: time.Minute, MinInterval: 5 * time.Second, Now: clock})
	tgt := wire.Target{Client: f.Addr}
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if si, err := p.Get(context.Background(), tgt); err != nil || si.Version == "" {
				t.Errorf("Get: %v %+v", err, si)
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n != 2 { // one srvr + one cons, shared by all ten
		t.Errorf("%d connections for 10 concurrent Gets, want 2", n)
	}
	p.Get(context.Background(), tgt) // cached
	p.Refresh(context.Background(), tgt)
	if n := conns.Load(); n != 2 {
		t.Errorf("cache/rate limit: %d connections", n)
	}
	mu.Lock()
	now = now.Add(6 * time.Second)
	mu.Unlock()
	p.Refresh(context.Background(), tgt)
	if n := conns.Load(); n != 4 {
		t.Errorf("refresh after MinInterval: %d connections, want 4", n)
	}
	// Sessions seen before the reset, and only those.
	client := netip.MustParseAddrPort("10.1.2.3:52574")
	if s := p.SessionBefore(f.Addr, client, now.Add(time.Second)).ID; s != "0x14a4a8e1e3b0001" {
		t.Errorf("session = %q", s)
	}
	if s := p.SessionBefore(f.Addr, client, time.Unix(999, 0)).ID; s != "" {
		t.Errorf("session before first seen = %q", s)
	}
	if s := p.SessionBefore(f.Addr, netip.MustParseAddrPort("[::1]:40616"), now).ID; s != "" {
		t.Errorf("sessionless connection = %q", s)
	}
	infos := p.Infos()
	if len(infos) != 1 || infos[0].Mode != "follower" {
		t.Errorf("infos %+v", infos)
	}
	// Own connections are recognised in both orientations, closed ones too.
	if ports := p.Conns().LocalPorts(); len(ports) != 4 {
		t.Errorf("probe ports %v", ports)
	}
}

func TestProberUnreachableCountsErrors(t *testing.T) {
	port, _ := zktest.FreePort()
	ep := "127.0.0.1:" + strconv.Itoa(port)
	p := NewProber(ProberConfig{Client: &wire.Client{Timeout: 300 * time.Millisecond}})
	si, err := p.Get(context.Background(), wire.Target{Client: ep})
	if err == nil || si.Reachable || !strings.Contains(err.Error(), ep) {
		t.Fatalf("unreachable: %v %+v", err, si)
	}
	if len(si.Errors) != 1 { // stopped after the first network failure
		t.Errorf("errors %v", si.Errors)
	}
	if p.ErrorCounts()[ep] != 1 {
		t.Errorf("error counts %v", p.ErrorCounts())
	}
	// A silent server costs one timeout, not one per word.
	f := zktest.ServeFake(t, zktest.Silent)
	start := time.Now()
	si = p.ProbeAll(context.Background(), wire.Target{Client: f.Addr})
	if took := time.Since(start); took > time.Second || si.Err == "" {
		t.Errorf("silent: %v, %+v", took, si)
	}
}
