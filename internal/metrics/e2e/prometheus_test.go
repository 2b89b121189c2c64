package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/testenv"
)

const prometheusBin = "/usr/bin/prometheus"

// startPrometheus runs a real Prometheus on loopback that scrapes target
// every second, and returns its base URL.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	testenv.RequireProgram(t, prometheusBin, "prometheus", "RSTWATCH_REQUIRE_PROMETHEUS")
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: rstwatch
    static_configs:
      - targets: [%q]
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(prometheusBin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs)
		}
	})
	base := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		if _, err := httpGet(ctx, base+"/-/ready"); err == nil {
			return base
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", logs)
		case <-ctx.Done():
			t.Fatalf("prometheus not ready after 60 s:\n%s", logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// promQuery returns the value of a query that yields one sample, and false
// while it yields none.
func promQuery(t *testing.T, base, q string) (float64, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := httpGet(ctx, base+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		t.Fatalf("query %s: %v %s", q, err, body)
	}
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("query %s: %v in %s", q, err, body)
	}
	if r.Status != "success" || len(r.Data.Result) == 0 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// waitQuery polls until the query's value reaches min, within 60 s.
func waitQuery(t *testing.T, base, q string, min float64) float64 {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if v, ok := promQuery(t, base, q); ok && v >= min {
			return v
		}
		if time.Now().After(deadline) {
			v, ok := promQuery(t, base, q)
			t.Fatalf("%s = %v (present %v), want at least %v after 60 s", q, v, ok, min)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestPrometheusSeesResets: a real Prometheus scraping `rstwatch serve`
// sees rstwatch_resets_total rise as resets happen.
func TestPrometheusSeesResets(t *testing.T) {
	sp := startServe(t)
	base := startPrometheus(t, sp.addr)
	// A name of our own, so resets from other processes on the host do
	// not count.
	const comm = "rstw-e2e-prom"
	setComm(t, comm)
	q := fmt.Sprintf(`sum(rstwatch_resets_total{owner_comm=%q})`, comm)
	port := closedPort(t)
	burst := func(n int) {
		for range n {
			if err := refuse(port); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitQuery(t, base, `up{job="rstwatch"}`, 1)
	burst(5)
	first := waitQuery(t, base, q, 5)
	burst(10)
	second := waitQuery(t, base, q, first+10)
	t.Logf("Prometheus: %s = %v, then %v", q, first, second)
	if v, ok := promQuery(t, base, `sum(rstwatch_resets_total{owner_comm="`+comm+`",direction="receive",verdict="none"})`); !ok || v < 15 {
		t.Errorf("received resets of %s = %v, want at least 15", comm, v)
	}
	sp.stop(t, 5*time.Second)
}
