package zk

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
)

func TestEnricherFake34(t *testing.T) {
	f := fake34(t)
	srv := netip.MustParseAddrPort(f.Addr)
	fp := newFakeProc(t)
	fp.jar("/opt/a/lib/zookeeper-3.4.5.jar", map[string]string{})
	fp.proc(procSpec{pid: "4321", args: []string{"java", "-cp", "/opt/a/lib/zookeeper-3.4.5.jar", "Main"}})

	e, err := NewEnricher(context.Background(), EnricherConfig{
		ClientPorts:    []uint16{srv.Port()},
		Prober:         NewProber(ProberConfig{Client: &Client{Timeout: time.Second}}),
		ClientVersions: &ClientVersions{ProcRoot: fp.root},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// This host is the client; the library in the owner's classpath is 3.4.5.
	ev := &event.Event{Time: time.Now(), Direction: event.Receive, Local: netip.MustParseAddrPort("127.0.0.1:52574"), Remote: srv,
		Owner: &event.Owner{PID: 4321, Comm: "java", Alive: true}}
	if !e.Enrich(ctx, ev) {
		t.Fatal("not enriched")
	}
	if ev.ZK.Role != RoleClient || ev.ZK.Endpoint != srv || ev.ZK.ClientVersion != "3.4.5" || ev.ZK.Mode != "follower" ||
		!strings.HasPrefix(ev.ZK.ServerVersion, "3.4.6") || ev.Verdict.Code != event.VerdictKnownBug ||
		!strings.Contains(ev.Verdict.Text, "pid 4321") {
		t.Errorf("client side: %+v %+v", ev.ZK, ev.Verdict)
	}

	// This host is the server; client version unknown, server 3.4.6:
	// inferred 1702; the session comes from cons taken before the reset.
	ev = &event.Event{Time: time.Now(), Direction: event.Send, Reason: "TCP_ABORT_ON_CLOSE", Local: srv, Remote: netip.MustParseAddrPort("10.1.2.3:52574")}
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
	if !e.IsOwnProbe(own) || e.Enrich(ctx, own) {
		t.Errorf("own probe not recognised (ports %v)", ports)
	}
}

func TestEnricherNamedAndUnreachable(t *testing.T) {
	f := fake353(t)
	e, err := NewEnricher(context.Background(), EnricherConfig{
		Servers: []string{f.Addr, "localhost:1"},
		Prober:  NewProber(ProberConfig{Client: &Client{Timeout: 300 * time.Millisecond}}),
		Resolve: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil // never the network in tests
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Prefetch(context.Background())
	ev := &event.Event{Direction: event.Send, Reason: "NO_SOCKET", Local: netip.MustParseAddrPort("127.0.0.1:40000"), Remote: netip.MustParseAddrPort(f.Addr)}
	if !e.Enrich(context.Background(), ev) || ev.Verdict.Code != event.VerdictNotKnownBug || ev.ZK.Session != "" {
		t.Errorf("3.5.3 named: %+v %+v", ev.ZK, ev.Verdict)
	}
	// Named but down: still ZooKeeper, verdict UNKNOWN, no hang.
	ev = &event.Event{Direction: event.Send, Local: netip.MustParseAddrPort("127.0.0.1:40001"), Remote: netip.MustParseAddrPort("127.0.0.1:1")}
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
