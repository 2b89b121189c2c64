// Package pipeline runs a trace: an event source (the tracer's ring-buffer
// reader) → enrichment (workloads, ZooKeeper, senders) → output sinks, and
// the closing summary.
//
// The source hands events over in batches to one processing goroutine, so
// that enrichment which may wait (a ZooKeeper probe on a cold cache) never
// stalls the reader; if processing falls behind for long, the kernel's ring
// buffer fills and the drops are counted and reported.
//
// The pipeline does not open or close the tracer: its caller does, so that
// setup errors come before anything else and the tracer can outlive the
// pipeline (serve's /metrics reads it until the very end).
package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/output"
	"github.com/rstwatch/rstwatch/tracer"
)

// Source is where events come from: *tracer.Tracer, opened by the caller.
type Source interface {
	// Run delivers events to cb until ctx is done, then drains what is
	// left and returns.
	Run(ctx context.Context, cb tracer.Callbacks) error
	// Stats and Missed are read once, for the summary.
	Stats() (tracer.Stats, error)
	Missed() (uint64, error)
}

// Enricher adds what is known beyond the kernel's record, e.g. ZooKeeper.
// It is called from the processing goroutine only.
type Enricher interface {
	Enrich(ctx context.Context, e *event.Event)
}

// Previewer is an Enricher that sees each batch of events before they are
// enriched one by one, e.g. to pair the two rows of one reset seen on both
// ends of this host, which the kernel reports in either order. It is
// called from the processing goroutine.
type Previewer interface {
	Preview(batch []*event.Event)
}

// ConnectObserver is an Enricher that also wants to hear of new
// connections to ZooKeeper ports (see event.Connect). It is called from the
// reading goroutine and must not block.
type ConnectObserver interface {
	Connected(c *event.Connect)
}

// Chain runs enrichers in order (nil ones left out): workload names before
// ZooKeeper, so that a verdict's text can name the owner's pod. Connection
// notices go to those that observe them.
func Chain(es ...Enricher) Enricher {
	var c chain
	for _, e := range es {
		if e != nil {
			c = append(c, e)
		}
	}
	switch len(c) {
	case 0:
		return nil
	case 1:
		return c[0]
	}
	return c
}

type chain []Enricher

func (c chain) Enrich(ctx context.Context, e *event.Event) {
	for _, x := range c {
		x.Enrich(ctx, e)
	}
}

func (c chain) Preview(batch []*event.Event) {
	for _, x := range c {
		if p, ok := x.(Previewer); ok {
			p.Preview(batch)
		}
	}
}

func (c chain) Connected(ev *event.Connect) {
	for _, x := range c {
		if o, ok := x.(ConnectObserver); ok {
			o.Connected(ev)
		}
	}
}

// Options configure one trace.
type Options struct {
	Duration time.Duration // 0: until ctx is done
	Count    uint64        // 0: no limit; else stop after this many events
	Sinks    []output.Sink
	Enricher Enricher // optional
	// Skip drops events before enrichment and output, e.g. rstwatch's own
	// probe connections. Optional.
	Skip func(*event.Event) bool
	// Keep, after enrichment, drops the events it refuses (filters on
	// what enrichment names). Optional.
	Keep func(*event.Event) bool
	// BeforeSummary may add to the summary before it is written (the
	// kernel's counters: internal/reconcile). Optional.
	BeforeSummary func(*output.Summary)
	Log           *slog.Logger
}

const batchSize = 256

// item holds a copy of an event and its owner, so the event's Owner
// pointer can point into the batch instead of the heap.
type item struct {
	ev    event.Event
	owner event.Owner
}

type message struct {
	batch []item
	lost  uint64
	pass  bool // the reader finished a pass over the ring buffer
}

// Run reads src until ctx is done, the duration passes, the count is
// reached or a sink fails, then flushes the sinks and writes the summary to
// them. A sink's failure is returned after the summary was attempted.
func Run(ctx context.Context, src Source, o Options) (*output.Summary, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if o.Duration > 0 {
		var cancelTimeout context.CancelFunc
		runCtx, cancelTimeout = context.WithTimeout(runCtx, o.Duration)
		defer cancelTimeout()
	}

	msgs := make(chan message, 64)
	free := sync.Pool{New: func() any { s := make([]item, 0, batchSize); return &s }}
	var cur []item
	send := func() {
		if len(cur) > 0 {
			msgs <- message{batch: cur}
			cur = nil
		}
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		readErr <- src.Run(runCtx, tracer.Callbacks{
			Event: func(e *event.Event) {
				if cur == nil {
					cur = (*free.Get().(*[]item))[:0]
				}
				cur = append(cur, item{ev: *e})
				if e.Owner != nil {
					cur[len(cur)-1].owner = *e.Owner
				}
				if len(cur) == batchSize {
					send()
				}
			},
			Connect: connectObserver(o.Enricher),
			Lost:    func(n uint64) { send(); msgs <- message{lost: n} },
			PassDone: func() {
				send()
				msgs <- message{pass: true}
			},
		})
	}()

	sum := output.NewSummary(time.Now())
	var sinkErr error
	write := func(f func(output.Sink) error) {
		for _, s := range o.Sinks {
			if err := f(s); err != nil && sinkErr == nil {
				sinkErr = err // returned: the caller says it, once
				stop()
			}
		}
	}
	// Each batch is previewed as it comes but enriched and written only
	// once the reader has finished the pass after its own: the other row
	// of a reset seen on both ends of this host is written microseconds
	// later and may fall into the next pass (or batch), and its owner and
	// reason must be known to the first row's enrichment. This delays
	// output by one pass (5 ms while resets come).
	previewer, _ := o.Enricher.(Previewer)
	var preview []*event.Event
	process := func(m message) {
		for i := range m.batch {
			it := &m.batch[i]
			e := &it.ev
			// Past the count or a failed sink, the rest is drained
			// unwritten: the source stops at its next pass.
			if o.Count > 0 && sum.Total >= o.Count || sinkErr != nil {
				break
			}
			if o.Skip != nil && o.Skip(e) {
				continue
			}
			if o.Enricher != nil {
				o.Enricher.Enrich(runCtx, e)
			}
			if o.Keep != nil && !o.Keep(e) {
				continue
			}
			sum.Add(e)
			write(func(s output.Sink) error { return s.Event(e) })
			if o.Count > 0 && sum.Total >= o.Count {
				stop()
			}
		}
		b := m.batch[:0]
		free.Put(&b)
	}
	// held: batches of passes before the last one ended; fresh: since.
	var held, fresh []message
	for m := range msgs {
		if m.lost > 0 {
			sum.Lost += m.lost
			write(func(s output.Sink) error { return s.Lost(m.lost) })
		}
		if len(m.batch) > 0 {
			for i := range m.batch {
				it := &m.batch[i]
				if it.ev.Owner != nil {
					it.ev.Owner = &it.owner
				}
			}
			if previewer != nil {
				preview = preview[:0]
				for i := range m.batch {
					preview = append(preview, &m.batch[i].ev)
				}
				previewer.Preview(preview)
			}
			fresh = append(fresh, m)
		}
		if !m.pass {
			continue
		}
		for _, h := range held {
			process(h)
		}
		held, fresh = fresh, held[:0]
		if len(msgs) == 0 && sinkErr == nil {
			write(output.Sink.Flush)
		}
	}
	for _, m := range append(held, fresh...) {
		process(m)
	}
	if sinkErr == nil {
		write(output.Sink.Flush)
	}
	if err := <-readErr; err != nil {
		return nil, err
	}

	sum.End = time.Now()
	if st, err := src.Stats(); err == nil {
		sum.Seen, sum.Filtered, sum.OwnerTableFull = st.Seen, st.Filtered, st.OwnerFull
		sum.AbortsRetracted = st.AbortsRetracted
		if st.Lost > sum.Lost {
			sum.Lost = st.Lost
		}
	} else {
		o.Log.Warn("reading the kernel counters failed", "error", err)
	}
	if n, err := src.Missed(); err == nil {
		sum.KernelMissed = n
	} else {
		o.Log.Warn("reading the programs' missed runs failed", "error", err)
	}
	if o.BeforeSummary != nil {
		o.BeforeSummary(sum)
	}
	if sinkErr == nil {
		write(func(s output.Sink) error { return s.Summary(sum) })
	}
	if sinkErr != nil {
		return sum, fmt.Errorf("writing output: %w", sinkErr)
	}
	return sum, nil
}

func connectObserver(e Enricher) func(*event.Connect) {
	if c, ok := e.(ConnectObserver); ok {
		return c.Connected
	}
	return nil
}
