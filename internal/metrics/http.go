package metrics

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a private registry with c and rstwatch's own process
// and Go runtime metrics (its memory and CPU are part of its cost).
func NewRegistry(c *Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector())
	return reg
}

// Health is what /healthz reports: 200 once the programs are attached and
// until shutdown begins, 503 otherwise.
type Health struct{ ok atomic.Bool }

func (h *Health) Set(ok bool) { h.ok.Store(ok) }

func (h *Health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !h.ok.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not tracing\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// Handler serves /metrics from reg and /healthz from h.
func Handler(reg *prometheus.Registry, h *Health) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// A scrape that cannot read one thing still gets the rest;
		// read failures are counted in rstwatch_read_errors_total.
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	}))
	mux.Handle("/healthz", h)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("rstwatch: see /metrics and /healthz\n"))
	})
	return mux
}
