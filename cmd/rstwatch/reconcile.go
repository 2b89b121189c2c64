package main

import (
	"context"
	"strings"

	"github.com/rstwatch/rstwatch/internal/netns"
	"github.com/rstwatch/rstwatch/internal/output"
	"github.com/rstwatch/rstwatch/internal/pipeline"
	"github.com/rstwatch/rstwatch/internal/reconcile"
	"github.com/rstwatch/rstwatch/internal/senders"
	"github.com/rstwatch/rstwatch/tracer"
)

// traceReconcile wires the kernel's counters and the senders' names into a
// trace: the tracer pairs received resets with local sends (LocalAddr), the
// senders enricher names raw-socket senders and hit connections, and the
// tracker counts what was traced for the summary's "kernel counted" line.
type traceReconcile struct {
	tracker *reconcile.Tracker
	senders *senders.Enricher // nil without --all-senders
}

func newTraceReconcile(ctx context.Context, cfg *tracer.Config, f *traceFlags, count uint64) *traceReconcile {
	ix := netns.New()
	local := reconcile.NewLocalAddrs(ix)
	go local.Run(ctx)
	cfg.LocalAddr = local.Has
	var filters []string
	if len(cfg.Ports) > 0 {
		filters = append(filters, "--port")
	}
	if cfg.PID != 0 {
		filters = append(filters, "--pid")
	}
	if count > 0 {
		filters = append(filters, "--count")
	}
	if len(f.workload.pods) > 0 {
		filters = append(filters, "--pod")
	}
	if len(f.workload.units) > 0 {
		filters = append(filters, "--unit")
	}
	if len(f.workload.containers) > 0 {
		filters = append(filters, "--container")
	}
	r := &traceReconcile{tracker: reconcile.NewTracker(reconcile.NewKernel(ix), cfg.NetNS, strings.Join(filters, " "))}
	if f.senders {
		r.senders = senders.New(ix, "/proc")
	}
	return r
}

// enricher runs before the tracker, which counts what the others decided.
func (r *traceReconcile) enricher(zk pipeline.Enricher) pipeline.Enricher {
	var names pipeline.Enricher
	if r.senders != nil {
		names = r.senders
	}
	return pipeline.Chain(zk, names, r.tracker)
}

func (r *traceReconcile) beforeSummary(s *output.Summary) { s.Kernel = r.tracker.Report() }
