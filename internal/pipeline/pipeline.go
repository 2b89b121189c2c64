// Package pipeline runs a trace: kernel → ring buffer → tracer → enrichment
// (ZooKeeper) → output sinks, and the closing summary.
//
// The ring-buffer reader hands events over in batches to one processing
// goroutine, so that enrichment which may wait (a ZooKeeper probe on a cold
// cache) never stalls the reader; if processing falls behind for long, the
// kernel's ring buffer fills and the drops are counted and reported.
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

// Enricher adds what is known beyond the kernel's record, e.g. ZooKeeper.
// It is called from the processing goroutine only.
type Enricher interface {
	Enrich(ctx context.Context, e *event.Event)
}

// ConnectObserver is an Enricher that also wants to hear of new
// connections to ZooKeeper ports (see event.Connect). It is called from the
// reading goroutine and must not block.
type ConnectObserver interface {
	Connected(c *event.Connect)
}

// Options configure one trace.
type Options struct {
	Tracer   tracer.Config
	Duration time.Duration // 0: until ctx is done
	Count    uint64        // 0: no limit; else stop after this many events
	Sinks    []output.Sink
	Enricher Enricher // optional
	// Skip drops events before enrichment and output, e.g. rstwatch's own
	// probe connections. Optional.
	Skip func(*event.Event) bool
	// Ready is called once the programs are attached.
	Ready func(t *tracer.Tracer)
	Log   *slog.Logger
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
}

// Run traces until ctx is done, the duration passes or the count is
// reached, then flushes the sinks and writes the summary to them.
func Run(ctx context.Context, o Options) (*output.Summary, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Tracer.Logger = o.Log
	t, err := tracer.Open(o.Tracer)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	for _, d := range t.Degraded() {
		o.Log.Warn("reduced attribution on this kernel", "detail", d)
	}

	if o.Ready != nil {
		o.Ready(t)
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
		readErr <- t.Run(runCtx, tracer.Callbacks{
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
			Connect:  connectObserver(o.Enricher),
			Lost:     func(n uint64) { send(); msgs <- message{lost: n} },
			PassDone: send,
		})
	}()

	sum := output.NewSummary(time.Now())
	var sinkErr error
	write := func(f func(output.Sink) error) {
		for _, s := range o.Sinks {
			if err := f(s); err != nil && sinkErr == nil {
				sinkErr = err
				o.Log.Error("writing output failed; stopping", "error", err)
				stop()
			}
		}
	}
	for m := range msgs {
		if m.lost > 0 {
			sum.Lost += m.lost
			write(func(s output.Sink) error { return s.Lost(m.lost) })
		}
		for i := range m.batch {
			it := &m.batch[i]
			e := &it.ev
			if e.Owner != nil {
				e.Owner = &it.owner
			}
			if o.Count > 0 && sum.Total >= o.Count {
				break
			}
			if o.Skip != nil && o.Skip(e) {
				continue
			}
			if o.Enricher != nil {
				o.Enricher.Enrich(runCtx, e)
			}
			sum.Add(e)
			write(func(s output.Sink) error { return s.Event(e) })
			if o.Count > 0 && sum.Total >= o.Count {
				stop()
			}
		}
		if m.batch != nil {
			b := m.batch[:0]
			free.Put(&b)
		}
		if len(msgs) == 0 {
			write(output.Sink.Flush)
		}
	}
	if err := <-readErr; err != nil {
		return nil, err
	}

	sum.End = time.Now()
	if st, err := t.Stats(); err == nil {
		sum.Seen, sum.Filtered, sum.OwnerTableFull = st.Seen, st.Filtered, st.OwnerFull
		if st.Lost > sum.Lost {
			sum.Lost = st.Lost
		}
	} else {
		o.Log.Warn("reading the kernel counters failed", "error", err)
	}
	if n, err := t.Missed(); err == nil {
		sum.KernelMissed = n
	} else {
		o.Log.Warn("reading the programs' missed runs failed", "error", err)
	}
	write(func(s output.Sink) error { return s.Summary(sum) })
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
