package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/tracer"
	"github.com/rstwatch/rstwatch/zk/diagnose"
	"github.com/rstwatch/rstwatch/zk/wire"
)

// fakeKernel behaves like the kernel map: rows grow, ForgetOwner deletes.
type fakeKernel struct{ rows []tracer.Count }

func (k *fakeKernel) Counts() ([]tracer.Count, error) {
	return append([]tracer.Count(nil), k.rows...), nil
}
func (k *fakeKernel) Stats() (tracer.Stats, error) { return tracer.Stats{Seen: 99, Lost: 1}, nil }
func (k *fakeKernel) ProgramStats() ([]tracer.ProgramStat, error) {
	return []tracer.ProgramStat{{Name: "rstwatch_send_reset", RunCount: 5, Runtime: 2 * time.Millisecond}}, nil
}
func (k *fakeKernel) ForgetOwner(pid uint32) error {
	kept := k.rows[:0]
	for _, r := range k.rows {
		if r.OwnerPID != pid {
			kept = append(kept, r)
		}
	}
	k.rows = kept
	return nil
}

type fakeZK struct{}

func (fakeZK) CountVerdict(_ context.Context, c diagnose.Count) string {
	if c.Endpoint.Port() != 2181 {
		return event.VerdictUnknown
	}
	return event.VerdictNotKnownBug
}
func (fakeZK) IsRstwatch(uint32, string) bool { return false }
func (fakeZK) Servers() []wire.ServerInfo {
	return []wire.ServerInfo{{Endpoint: "127.0.0.1:2181", Version: "3.8.0-5a02a05", Mode: "standalone"}}
}
func (fakeZK) ErrorCounts() map[string]uint64 { return map[string]uint64{"127.0.0.1:2181": 2} }

func scrape(t *testing.T, c *Collector) string {
	t.Helper()
	var h Health
	h.Set(true)
	srv := httptest.NewServer(Handler(NewRegistry(c), &h))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestCollectorForgetsExitedOwnersAndStaysMonotonic(t *testing.T) {
	proc := t.TempDir()
	if err := os.Mkdir(filepath.Join(proc, "100"), 0o755); err != nil {
		t.Fatal(err)
	}
	zkRow := row(event.Receive, "java", 100, 4)
	zkRow.ZKEndpoint = netip.MustParseAddrPort("127.0.0.1:2181")
	k := &fakeKernel{rows: []tracer.Count{zkRow, row(event.Send, "curl", 200, 7)}}
	c := NewCollector(k, Options{ZK: fakeZK{}, ProcRoot: proc})

	out := scrape(t, c)
	for _, want := range []string{
		`rstwatch_resets_total{container="",direction="receive",namespace="",owner_comm="java",pod="",reason="NO_SOCKET",unit="",verdict="NOT_KNOWN_BUG",zk_endpoint="127.0.0.1:2181"} 4`,
		`rstwatch_resets_total{container="",direction="send",namespace="",owner_comm="curl",pod="",reason="NO_SOCKET",unit="",verdict="none",zk_endpoint=""} 7`,
		`rstwatch_zk_server_info{endpoint="127.0.0.1:2181",mode="standalone",version="3.8.0"} 1`,
		`rstwatch_zk_probe_errors_total{endpoint="127.0.0.1:2181"} 2`,
		`rstwatch_bpf_program_runs_total{program="rstwatch_send_reset"} 5`,
		`rstwatch_bpf_program_run_seconds_total{program="rstwatch_send_reset"} 0.002`,
		`rstwatch_lost_events_total 1`,
		`rstwatch_owners_forgotten_total 1`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %s\n%s", want, out)
		}
	}
	if len(k.rows) != 1 {
		t.Fatalf("the exited owner's row was not deleted: %v", k.rows)
	}
	// pid 200 is gone from the kernel; its 7 stay, pid 100 grows.
	k.rows[0].Count = 6
	out = scrape(t, c)
	for _, want := range []string{
		`owner_comm="curl",pod="",reason="NO_SOCKET",unit="",verdict="none",zk_endpoint=""} 7`,
		`owner_comm="java",pod="",reason="NO_SOCKET",unit="",verdict="NOT_KNOWN_BUG",zk_endpoint="127.0.0.1:2181"} 6`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("second scrape lacks %s\n%s", want, out)
		}
	}
	c.Detach()
	if out := scrape(t, c); !strings.Contains(out, `owner_comm="curl"`) {
		t.Error("a detached collector must still serve what it read")
	}
}

func TestHealthz(t *testing.T) {
	var h Health
	srv := httptest.NewServer(Handler(NewRegistry(NewCollector(&fakeKernel{}, Options{})), &h))
	defer srv.Close()
	get := func() int {
		resp, err := srv.Client().Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != 503 {
		t.Errorf("before attach: %d, want 503", code)
	}
	h.Set(true)
	if code := get(); code != 200 {
		t.Errorf("attached: %d, want 200", code)
	}
}
