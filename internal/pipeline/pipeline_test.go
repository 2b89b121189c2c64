package pipeline

import (
	"context"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/output"
	"github.com/rstwatch/rstwatch/tracer"
)

// step is one thing the fake source does: deliver events, report drops,
// or end a pass over the ring.
type step struct {
	events int
	lost   uint64
	pass   bool
}

// fakeSource plays steps like the tracer's read loop: on its own
// goroutine, reusing one event and one owner for every callback (as the
// real decoder does), then waits for ctx, like a live ring buffer.
type fakeSource struct {
	steps    []step
	stats    tracer.Stats
	missed   uint64
	runErr   error
	stopped  atomic.Bool // Run saw ctx done
	sent     atomic.Int64
	connects int
}

func (f *fakeSource) Run(ctx context.Context, cb tracer.Callbacks) error {
	var (
		ev    event.Event
		owner event.Owner
	)
	for _, s := range f.steps {
		for range s.events {
			if ctx.Err() != nil {
				break
			}
			n := uint16(f.sent.Add(1))
			ev = event.Event{Direction: event.Send, Local: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), n), Reason: "NO_SOCKET"}
			if n%2 == 0 {
				owner = event.Owner{PID: uint32(n), Comm: "even"}
				ev.Owner = &owner
			}
			cb.Event(&ev)
		}
		if s.lost > 0 && cb.Lost != nil {
			cb.Lost(s.lost)
		}
		if s.pass && cb.PassDone != nil {
			cb.PassDone()
		}
		if cb.Connect != nil {
			f.connects++
			cb.Connect(&event.Connect{})
		}
	}
	if cb.PassDone != nil {
		cb.PassDone()
	}
	if f.runErr != nil {
		return f.runErr
	}
	<-ctx.Done()
	f.stopped.Store(true)
	return nil
}

func (f *fakeSource) Stats() (tracer.Stats, error) { return f.stats, nil }
func (f *fakeSource) Missed() (uint64, error)      { return f.missed, nil }

// recorder is a sink that keeps what it was given (copies: the pipeline
// reuses its batches).
type recorder struct {
	events  []event.Event
	owners  []*event.Owner
	lost    []uint64
	summary *output.Summary
	flushes int
	failAt  int // fail the failAt-th event (1-based); 0: never
}

func (r *recorder) Event(e *event.Event) error {
	if r.failAt > 0 && len(r.events)+1 == r.failAt {
		return errDiskFull
	}
	r.events = append(r.events, *e)
	if e.Owner != nil {
		o := *e.Owner
		r.owners = append(r.owners, &o)
	} else {
		r.owners = append(r.owners, nil)
	}
	return nil
}
func (r *recorder) Lost(n uint64) error             { r.lost = append(r.lost, n); return nil }
func (r *recorder) Summary(s *output.Summary) error { r.summary = s; return nil }
func (r *recorder) Flush() error                    { r.flushes++; return nil }

func run(t *testing.T, src *fakeSource, o Options) (*recorder, *output.Summary, error) {
	t.Helper()
	rec := &recorder{}
	if len(o.Sinks) == 0 {
		o.Sinks = []output.Sink{rec}
	} else {
		rec = o.Sinks[0].(*recorder)
	}
	if o.Duration == 0 && o.Count == 0 {
		o.Duration = 200 * time.Millisecond
	}
	done := make(chan struct{})
	var (
		sum *output.Summary
		err error
	)
	go func() { sum, err = Run(context.Background(), src, o); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	return rec, sum, err
}

// Every event arrives once, in order, with its own owner (not the source's
// reused one), across batch boundaries; the sinks are flushed when the
// stream goes quiet, and the summary comes last with the kernel's counters.
func TestBatchesKeepOrderAndOwners(t *testing.T) {
	src := &fakeSource{
		steps: []step{{events: batchSize + 7, pass: true}, {events: 3 * batchSize}, {events: 1, pass: true}},
		stats: tracer.Stats{Seen: 5000, Filtered: 10, OwnerFull: 2}, missed: 4,
	}
	rec, sum, err := run(t, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := 4*batchSize + 8
	if len(rec.events) != want {
		t.Fatalf("%d events, want %d", len(rec.events), want)
	}
	for i, e := range rec.events {
		n := uint16(i + 1)
		if e.Local.Port() != n {
			t.Fatalf("event %d has port %d: out of order", i, e.Local.Port())
		}
		o := rec.owners[i]
		if (n%2 == 0) != (o != nil) || o != nil && o.PID != uint32(n) {
			t.Fatalf("event %d: owner %+v", i, o)
		}
	}
	if rec.flushes == 0 {
		t.Error("the sinks were never flushed")
	}
	if rec.summary == nil || rec.summary != sum || sum.Total != uint64(want) {
		t.Fatalf("summary %+v", sum)
	}
	if sum.Seen != 5000 || sum.Filtered != 10 || sum.OwnerTableFull != 2 || sum.KernelMissed != 4 {
		t.Errorf("kernel counters not in the summary: %+v", sum)
	}
	if !src.stopped.Load() {
		t.Error("the source was not stopped")
	}
}

// --count: exactly N events are written, and the source is told to stop.
func TestCountStops(t *testing.T) {
	src := &fakeSource{steps: []step{{events: 1000, pass: true}}}
	rec, sum, err := run(t, src, Options{Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 10 || sum.Total != 10 {
		t.Fatalf("%d events written, total %d, want 10", len(rec.events), sum.Total)
	}
	if !src.stopped.Load() {
		t.Error("the count did not stop the source")
	}
}

// Skipped events (rstwatch's own probes) are neither written, counted nor
// enriched.
func TestSkip(t *testing.T) {
	src := &fakeSource{steps: []step{{events: 10, pass: true}}}
	var enriched int
	rec, sum, err := run(t, src, Options{
		Skip:     func(e *event.Event) bool { return e.Local.Port()%2 == 1 },
		Enricher: enricherFunc(func(*event.Event) { enriched++ }),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 5 || sum.Total != 5 || enriched != 5 {
		t.Fatalf("written %d, total %d, enriched %d; want 5 each", len(rec.events), sum.Total, enriched)
	}
	for _, e := range rec.events {
		if e.Local.Port()%2 == 1 {
			t.Errorf("skipped event written: %v", e.Local)
		}
	}
}

// Drops are passed on as soon as they are seen, after the events read
// before them, and the summary takes the kernel's count when it is larger.
func TestLostNotices(t *testing.T) {
	src := &fakeSource{
		steps: []step{{events: 3, lost: 5}, {events: 2, lost: 7, pass: true}},
		stats: tracer.Stats{Lost: 13},
	}
	rec, sum, err := run(t, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.lost) != 2 || rec.lost[0] != 5 || rec.lost[1] != 7 {
		t.Fatalf("lost notices %v, want [5 7]", rec.lost)
	}
	if sum.Lost != 13 {
		t.Errorf("summary lost %d, want the kernel's 13", sum.Lost)
	}
	if len(rec.events) != 5 {
		t.Errorf("%d events, want 5", len(rec.events))
	}
}

// A sink that fails stops the trace: nothing more is written to it, the
// source is stopped, and Run returns the error with the summary so far.
func TestStopOnSinkError(t *testing.T) {
	src := &fakeSource{steps: []step{{events: 2 * batchSize, pass: true}, {events: 2 * batchSize, pass: true}}}
	rec := &recorder{failAt: 3}
	_, sum, err := run(t, src, Options{Sinks: []output.Sink{rec}, Duration: time.Minute})
	if !errors.Is(err, errDiskFull) {
		t.Fatalf("want the sink's error, got %v", err)
	}
	if len(rec.events) != 2 {
		t.Fatalf("%d events written after the failure, want the 2 before it", len(rec.events))
	}
	if !src.stopped.Load() {
		t.Error("the sink's failure did not stop the source")
	}
	if sum == nil || rec.summary != nil {
		t.Errorf("summary %v returned, %v written to the failed sink", sum, rec.summary)
	}
}

var errDiskFull = errors.New("disk full")

// The source's own failure is returned.
func TestSourceError(t *testing.T) {
	boom := errors.New("ring buffer gone")
	src := &fakeSource{steps: []step{{events: 1}}, runErr: boom}
	if _, _, err := run(t, src, Options{Duration: time.Minute}); !errors.Is(err, boom) {
		t.Fatalf("want %v, got %v", boom, err)
	}
}

// ZooKeeper connect notices reach an enricher that observes them.
func TestConnectObserver(t *testing.T) {
	src := &fakeSource{steps: []step{{events: 1}, {events: 1}}}
	obs := &observer{}
	if _, _, err := run(t, src, Options{Enricher: obs}); err != nil {
		t.Fatal(err)
	}
	if obs.n.Load() != int64(src.connects) || src.connects == 0 {
		t.Fatalf("%d connects observed of %d", obs.n.Load(), src.connects)
	}
}

type enricherFunc func(*event.Event)

func (f enricherFunc) Enrich(_ context.Context, e *event.Event) { f(e) }

type observer struct{ n atomic.Int64 }

func (o *observer) Enrich(context.Context, *event.Event) {}
func (o *observer) Connected(*event.Connect)             { o.n.Add(1) }

// previewCounter is a Previewer that notes, for each event it enriches,
// how many events it had previewed by then.
type previewCounter struct {
	previewed int
	atEnrich  map[uint16]int
}

func (p *previewCounter) Preview(batch []*event.Event) { p.previewed += len(batch) }
func (p *previewCounter) Enrich(_ context.Context, e *event.Event) {
	p.atEnrich[e.Local.Port()] = p.previewed
}

// The other row of a reset can be written just after a pass of the reader
// (or past a full batch): an event is enriched only once the pass after
// its own was previewed, so that its pair, wherever it fell, is known.
func TestPreviewSeesTheNextPass(t *testing.T) {
	src := &fakeSource{steps: []step{
		{events: 1, pass: true},             // 1: alone in its pass
		{events: batchSize + 1, pass: true}, // 2..258: a full batch and one more
		{events: 2, pass: true},             // 259, 260
	}}
	pc := &previewCounter{atEnrich: map[uint16]int{}}
	rec, _, err := run(t, src, Options{Enricher: pc})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != batchSize+4 {
		t.Fatalf("%d events", len(rec.events))
	}
	for port, want := range map[uint16]int{1: batchSize + 2, 2: batchSize + 4, batchSize + 1: batchSize + 4, batchSize + 2: batchSize + 4, batchSize + 4: batchSize + 4} {
		if got := pc.atEnrich[port]; got != want {
			t.Errorf("event %d enriched after %d previewed, want %d", port, got, want)
		}
	}
}
