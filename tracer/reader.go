package tracer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/rstwatch/rstwatch/internal/event"
)

// recordSource is the part of *ringbuf.Reader the read loop uses, so the
// loop's batching and shutdown are tested without a kernel.
type recordSource interface {
	SetDeadline(time.Time)
	ReadInto(*ringbuf.Record) error
	Close() error
}

// Callbacks receive what the read loop produces, on its goroutine.
type Callbacks struct {
	// Event receives each decoded event. The event and what it points to
	// are reused after it returns: copy what must outlive the call.
	Event func(*event.Event)
	// Lost is told how many records the kernel dropped since the last
	// call, as soon as the drops are seen. Optional.
	Lost func(n uint64)
	// Connect receives each new connection to or from a ZooKeeper port
	// (Config.ZKPorts), also when only aggregating. Optional; the value is
	// reused after it returns.
	Connect func(*event.Connect)
	// PassDone is called after each pass over the ring buffer, when it was
	// empty: a natural point to hand a batch on or flush output. Optional.
	PassDone func()
}

// Run reads events until ctx is done, then drains what the ring buffer still
// holds and returns nil. It is the only reader of the ring buffer. When
// only aggregating (Config.NoEvents), it reads the rare ZooKeeper connect
// records, on a longer interval, or just waits when there are none to read.
func (t *Tracer) Run(ctx context.Context, cb Callbacks) error {
	if t.cfg.LocalAddr != nil && !t.cfg.NoEvents {
		p := newPairer(t, cb)
		cb = p.wrap()
		defer p.flush()
	}
	// When only aggregating, the reset ring holds nothing but the rare
	// ZooKeeper connect records: read it only when someone wants them.
	readResets := !t.cfg.NoEvents || len(t.cfg.ZKPorts) > 0 && cb.Connect != nil
	if t.senders != nil {
		sr, err := t.senders.newReader(t, cb)
		if err != nil {
			return err
		}
		defer sr.close()
		if !readResets {
			return sr.run(ctx, sendersPollInterval)
		}
		cb = sr.wrap()
	}
	interval := t.cfg.PollInterval
	if t.cfg.NoEvents {
		if !readResets {
			<-ctx.Done()
			return nil
		}
		interval = max(interval, noEventsPollInterval)
	}
	rd, err := ringbuf.NewReader(t.objs.Events)
	if err != nil {
		return fmt.Errorf("tracer: opening the ring buffer: %w", err)
	}
	defer rd.Close()
	l := &loop{
		src:      rd,
		dec:      newDecoder(t.reasons, t.clock),
		interval: interval,
		cb:       cb,
		stats:    t.lost,
		log:      t.log.Warn,
		ring:     t.cfg.RingBufferSize,
	}
	return l.run(ctx)
}

// noEventsPollInterval is how often connect records are read when only
// aggregating: they are few, and nothing waits for them.
const noEventsPollInterval = 200 * time.Millisecond

type loop struct {
	src      recordSource
	dec      *decoder
	interval time.Duration
	cb       Callbacks
	stats    func() (lost uint64, err error)
	log      func(msg string, args ...any)
	// ring is the ring buffer's size in bytes; 0 keeps every wait in
	// epoll (see timerWait).
	ring int

	reportedLost uint64
	aborts       abortHold
}

func (l *loop) run(ctx context.Context) error {
	var (
		rec ringbuf.Record
		ev  event.Event
	)
	interval := l.interval
	onTimer := false
	for {
		if onTimer {
			select {
			case <-ctx.Done():
			case <-time.After(interval):
			}
		}
		done := ctx.Err() != nil
		// Records are submitted without a wake-up under load, so the
		// reader drains on a timer; after ctx is done one last pass with
		// a past deadline takes what is left.
		deadline := time.Now().Add(interval)
		if done || onTimer {
			deadline = time.Now()
		}
		l.src.SetDeadline(deadline)
		read := 0 // bytes this pass
		for {
			err := l.src.ReadInto(&rec)
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if errors.Is(err, ringbuf.ErrClosed) {
				l.checkLost()
				l.aborts.flush(l.cb.Event)
				return nil
			}
			if err != nil {
				return fmt.Errorf("tracer: reading the ring buffer: %w", err)
			}
			read += len(rec.RawSample) + ringRecordHeader
			l.handle(rec.RawSample, &ev)
		}
		interval = l.next(interval, read > 0)
		onTimer = l.timerWait(read)
		l.checkLost()
		if done {
			l.aborts.flush(l.cb.Event)
		} else {
			l.aborts.passDone(l.cb.Event)
		}
		if l.cb.PassDone != nil {
			l.cb.PassDone()
		}
		if done {
			return nil
		}
	}
}

// idlePollInterval is the longest the reader sleeps while nothing comes:
// a host without resets should not pay for a reader polling every few
// milliseconds, and a burst wakes it early anyway (a quarter of the ring).
const idlePollInterval = 100 * time.Millisecond

// next is the interval after a pass: back to the configured one when the
// pass read records, doubling up to idlePollInterval while none come.
func (l *loop) next(cur time.Duration, got bool) time.Duration {
	if got || cur >= idlePollInterval {
		if got {
			return l.interval
		}
		return max(cur, l.interval)
	}
	return min(2*cur, idlePollInterval)
}

// ringRecordHeader is the kernel's header before each ring-buffer record
// (BPF_RINGBUF_HDR_SZ).
const ringRecordHeader = 8

// timerWait reports whether the reader waits for its next pass on a Go
// timer rather than in epoll_wait, after a pass that read this many bytes.
// A goroutine blocked in a system call keeps its P, and the runtime's
// monitor (sysmon) takes such Ps back, then checks every 20 µs for a
// millisecond after each take: with records coming every pass, that was
// ~30% of trace's CPU in a refused storm on a 2-vCPU VM (its thread's
// context switches). A timer leaves no P in a system call. epoll stays
// while nothing comes (the kernel wakes it at a quarter of the ring) and
// after a pass that read more than an eighth of the ring: a burst that
// could fill it before the next pass must still be able to wake the
// reader early.
func (l *loop) timerWait(read int) bool {
	return read > 0 && read <= l.ring/8
}

// handle decodes one record and hands it to its callback.
func (l *loop) handle(raw []byte, ev *event.Event) {
	switch kind(raw) {
	case rstwatchRecordKindRECORD_CONNECT:
		c, err := l.dec.decodeConnect(raw)
		if err != nil {
			l.log("skipping a malformed record", "error", err, "len", len(raw))
			return
		}
		if l.cb.Connect != nil {
			l.cb.Connect(c)
		}
	default:
		if err := l.dec.decode(raw, ev); err != nil {
			l.log("skipping a malformed record", "error", err, "len", len(raw))
			return
		}
		if l.aborts.take(ev, l.dec.flags) {
			return
		}
		if l.cb.Event != nil {
			l.cb.Event(ev)
		}
	}
}

func (l *loop) checkLost() {
	if l.stats == nil {
		return
	}
	n, err := l.stats()
	if err != nil {
		l.log("reading the lost-event counter failed", "error", err)
		return
	}
	if n > l.reportedLost {
		if l.cb.Lost != nil {
			l.cb.Lost(n - l.reportedLost)
		}
		l.reportedLost = n
	}
}
