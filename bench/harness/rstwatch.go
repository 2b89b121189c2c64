package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// serveCounter is the Prometheus counter of resets `rstwatch serve` exports.
const serveCounter = "rstwatch_resets_total"

func traceJSON(bin string, extra ...string) Tracer {
	return Tracer{
		Name:        "rstwatch-trace-json" + nameSuffix(extra),
		How:         "rstwatch trace --output json" + howSuffix(extra) + " > FILE (default ring buffer)",
		Unavailable: func() string { return rstwatchMissing(bin) },
		shapes:      storm.Shapes,
		start: func(ctx context.Context, dir string) (session, error) {
			ready := filepath.Join(dir, "ready")
			out := filepath.Join(dir, "trace.jsonl")
			p, err := startProc(append([]string{bin, "trace", "--output", "json", "--ready-file", ready}, extra...), out)
			if err != nil {
				return nil, err
			}
			if err := p.waitReady(ctx, "its --ready-file", fileReady(ready)); err != nil {
				p.kill()
				return nil, err
			}
			return &traceSession{proc: p, out: out}, nil
		},
	}
}

type traceSession struct {
	*proc
	out string
}

func (s *traceSession) stop(ctx context.Context) (tally, error) {
	tl, err := s.end(ctx)
	tl.PerReset, tl.Unit = 2, "events"
	if err != nil {
		return tl, err
	}
	f, err := os.Open(s.out)
	if err != nil {
		return tl, fmt.Errorf("rstwatch output: %w", err)
	}
	defer f.Close()
	n, sum, err := measure.ScanRstwatchJSON(f)
	if err != nil {
		return tl, fmt.Errorf("reading rstwatch output: %w", err)
	}
	tl.Received = n
	if sum == nil {
		tl.Note = "no summary line"
		return tl, nil
	}
	tl.Lost = &sum.Lost
	return tl, nil
}

func serve(bin string, extra ...string) Tracer {
	return Tracer{
		Name:   "rstwatch-serve" + nameSuffix(extra),
		How:    "rstwatch serve --metrics-addr 127.0.0.1:PORT" + howSuffix(extra) + " (in-kernel aggregation)",
		shapes: storm.Shapes,
		Unavailable: func() string {
			if m := rstwatchMissing(bin); m != "" {
				return m
			}
			return serveMissing(bin)
		},
		start: func(ctx context.Context, dir string) (session, error) {
			addr, err := freeLoopbackAddr()
			if err != nil {
				return nil, err
			}
			p, err := startProc(append([]string{bin, "serve", "--metrics-addr", addr}, extra...), filepath.Join(dir, "serve.out"))
			if err != nil {
				return nil, err
			}
			s := &serveSession{proc: p, base: "http://" + addr, client: &http.Client{Timeout: 5 * time.Second}}
			healthy := func() bool { _, err := s.get("/healthz"); return err == nil }
			if err := p.waitReady(ctx, "/healthz", healthy); err != nil {
				p.kill()
				return nil, err
			}
			return s, nil
		},
	}
}

// serveMissing asks the binary whether it has serve with --metrics-addr,
// so that a build without it is a clear skip rather than a failed run.
func serveMissing(bin string) string {
	out, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "metrics-addr") {
		return fmt.Sprintf("serve not available (%s serve --help: %s)", bin, lastLines(out, 1))
	}
	return ""
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port for serve's metrics: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

type serveSession struct {
	*proc
	base   string
	client *http.Client
	before float64
}

func (s *serveSession) get(path string) ([]byte, error) {
	resp, err := s.client.Get(s.base + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

func (s *serveSession) scrape() (float64, error) {
	b, err := s.get("/metrics")
	if err != nil {
		return 0, fmt.Errorf("scraping serve: %w", err)
	}
	v, ok := measure.MetricSum(b, serveCounter)
	if !ok {
		// No reset counted yet, or the counter is named otherwise.
		return 0, nil
	}
	return v, nil
}

func (s *serveSession) mark() error {
	v, err := s.scrape()
	if err != nil {
		return err
	}
	s.before = v
	return s.proc.mark()
}

func (s *serveSession) stop(ctx context.Context) (tally, error) {
	after, scrapeErr := s.scrape()
	tl, err := s.end(ctx)
	tl.PerReset, tl.Unit = 2, "events"
	if scrapeErr != nil {
		return tl, scrapeErr
	}
	if after == 0 {
		tl.Note = "no " + serveCounter + " samples"
	}
	tl.Received = uint64(after - s.before)
	return tl, err
}
