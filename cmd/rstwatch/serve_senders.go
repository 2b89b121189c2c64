package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/metrics"
	"github.com/rstwatch/rstwatch/internal/netns"
	"github.com/rstwatch/rstwatch/internal/pipeline"
	"github.com/rstwatch/rstwatch/internal/reconcile"
	"github.com/rstwatch/rstwatch/internal/senders"
	"github.com/rstwatch/rstwatch/tracer"
)

// serveReconcile adds to serve what issue #14 asks: the kernel's own
// per-namespace reset counters, always (cheap: read on scrape), and with
// --all-senders the resets other senders put on the wire, counted by
// sender.
type serveReconcile struct {
	kernel  *metrics.KernelCounters
	senders *metrics.Senders  // nil without --all-senders
	names   *senders.Enricher // nil without --all-senders
}

func newServeReconcile(ctx context.Context, cfg *tracer.Config, limits metrics.Limits) *serveReconcile {
	ix := netns.New()
	// The resets traced per namespace come from the collector (register).
	r := &serveReconcile{kernel: metrics.NewKernelCounters(reconcile.NewKernel(ix), nil)}
	if cfg.AllSenders || !cfg.NoEvents {
		r.senders = metrics.NewSenders(limits)
	}
	if cfg.AllSenders {
		r.names = senders.New(ix, "/proc")
	}
	if !cfg.NoEvents {
		// Streaming events (--events-file): received resets that no
		// local TCP send explains are marked, as in trace.
		local := reconcile.NewLocalAddrs(ix)
		go local.Run(ctx)
		cfg.LocalAddr = local.Has
	}
	return r
}

// start takes the kernel's first reading; call it once attached.
func (r *serveReconcile) start() { r.kernel.Start() }

func (r *serveReconcile) register(reg *prometheus.Registry, coll *metrics.Collector) {
	// What the kernel aggregates say was sent, per namespace, against
	// the kernel's own counters (rstwatch_kernel_resets_untraced).
	r.kernel.SetTraced(func() (map[uint32]uint64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return coll.SentByNetNS(ctx)
	})
	reg.MustRegister(r.kernel)
	if r.senders != nil {
		reg.MustRegister(r.senders)
	}
}

// enricher is for the --events-file pipeline: it names other senders and
// counts them, and the received resets not sent by the TCP stack.
func (r *serveReconcile) enricher(zk pipeline.Enricher) pipeline.Enricher {
	var names pipeline.Enricher
	if r.names != nil {
		names = r.names
	}
	return pipeline.Chain(zk, names, countSenders{r.senders})
}

type countSenders struct{ s *metrics.Senders }

func (c countSenders) Enrich(_ context.Context, e *event.Event) { c.s.Add(e) }

// events is the tracer's Event callback when serve streams nothing else
// (no --events-file): the packet-level view's resets, named and counted.
// Nil without --all-senders.
func (r *serveReconcile) events(ctx context.Context) func(*event.Event) {
	if r.names == nil {
		return nil
	}
	return func(e *event.Event) {
		r.names.Enrich(ctx, e)
		r.senders.Add(e)
	}
}
