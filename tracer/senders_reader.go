package tracer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/rstwatch/rstwatch/internal/event"
)

// How long, and how many, sends of the packet-level view are kept to tag
// the received resets they cause: on this host the receive follows the
// send within microseconds, in the same softirq.
const (
	recentSendTTL = 2 * time.Second
	recentSendMax = 4096
)

type flowKey struct{ src, dst netip.AddrPort }

type recentSend struct {
	sender *event.Sender
	at     time.Time
}

// sendersReader reads the packet-level view's ring buffer on the goroutine
// of the reset read loop, so that its events reach the callbacks in order
// with the others, and tags each received reset whose sender it saw leave
// a device (e.Sender). A send is always recorded before the receive it
// causes, so before a received reset is handed on, whatever the ring holds
// is read first: the tag does not depend on timing.
type sendersReader struct {
	src    recordSource
	avail  func() int // bytes waiting in the ring, without a system call
	dec    *senderDecoder
	cb     Callbacks
	stats  func() (lost uint64, err error)
	log    func(msg string, args ...any)
	recent map[flowKey]recentSend
	rec    ringbuf.Record
	lost   uint64
	now    func() time.Time
	// keep applies --port and --pid, which the packet-level programs do
	// not (such resets are rare): --pid keeps those queued by that process.
	keep func(*event.Event) bool
}

func (s *senders) newReader(t *Tracer, cb Callbacks) (*sendersReader, error) {
	rd, err := ringbuf.NewReader(s.objs.SenderEvents)
	if err != nil {
		return nil, fmt.Errorf("tracer: opening the packet-level ring buffer: %w", err)
	}
	return &sendersReader{
		src:    rd,
		avail:  rd.AvailableBytes,
		dec:    newSenderDecoder(t.clock, s.syms, t.log.Debug),
		cb:     cb,
		stats:  func() (uint64, error) { return s.stat(sendersSenderStatSENDER_STAT_LOST) },
		log:    t.log.Warn,
		recent: map[flowKey]recentSend{},
		now:    time.Now,
		keep:   sendersFilter(t.cfg.Ports, t.cfg.PID),
	}, nil
}

func sendersFilter(ports []uint16, pid uint32) func(*event.Event) bool {
	if len(ports) == 0 && pid == 0 {
		return nil
	}
	set := map[uint16]bool{}
	for _, p := range ports {
		set[p] = true
	}
	return func(e *event.Event) bool {
		if len(set) > 0 && !set[e.Local.Port()] && !set[e.Remote.Port()] {
			return false
		}
		return pid == 0 || e.Task.PID == pid
	}
}

func (r *sendersReader) close() error { return r.src.Close() }

// wrap returns callbacks for the reset read loop that interleave this
// ring's events with the loop's and tag received resets.
func (r *sendersReader) wrap() Callbacks {
	out := r.cb
	out.Event = func(e *event.Event) {
		if e.Direction == event.Receive {
			if r.avail() > 0 {
				r.drain()
			}
			r.tag(e)
		}
		r.cb.Event(e)
	}
	out.PassDone = func() {
		if r.avail() > 0 {
			r.drain()
		}
		r.expire()
		r.checkLost()
		if r.cb.PassDone != nil {
			r.cb.PassDone()
		}
	}
	return out
}

// drain hands on every record the ring holds now.
func (r *sendersReader) drain() {
	r.src.SetDeadline(time.Now())
	for {
		err := r.src.ReadInto(&r.rec)
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, ringbuf.ErrClosed) {
			return
		}
		if err != nil {
			r.log("reading the packet-level ring buffer failed", "error", err)
			return
		}
		e, err := r.dec.decode(r.rec.RawSample)
		if err != nil {
			r.log("skipping a malformed packet-level record", "error", err, "len", len(r.rec.RawSample))
			continue
		}
		if e == nil || (r.keep != nil && !r.keep(e)) {
			continue
		}
		if len(r.recent) >= recentSendMax {
			r.expire()
		}
		if len(r.recent) < recentSendMax {
			r.recent[flowKey{e.Local, e.Remote}] = recentSend{e.Sender, r.now()}
		}
		r.cb.Event(e)
	}
}

// tag marks a received reset with the sender seen sending it, if any.
func (r *sendersReader) tag(e *event.Event) {
	if len(r.recent) == 0 || e.Sender != nil {
		return
	}
	k := flowKey{src: e.Remote, dst: e.Local}
	if s, ok := r.recent[k]; ok {
		delete(r.recent, k)
		if r.now().Sub(s.at) <= recentSendTTL {
			e.Sender = s.sender
		}
	}
}

func (r *sendersReader) expire() {
	if len(r.recent) == 0 {
		return
	}
	cut := r.now().Add(-recentSendTTL)
	for k, s := range r.recent {
		if s.at.Before(cut) {
			delete(r.recent, k)
		}
	}
}

func (r *sendersReader) checkLost() {
	n, err := r.stats()
	if err != nil {
		r.log("reading the packet-level lost counter failed", "error", err)
		return
	}
	if n > r.lost {
		if r.cb.Lost != nil {
			r.cb.Lost(n - r.lost)
		}
		r.lost = n
	}
}

// run drains on a timer until ctx is done, for a tracer that streams no
// reset events (serve only counting): the packet-level events still flow.
func (r *sendersReader) run(ctx context.Context, every time.Duration) error {
	cb := r.wrap()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			cb.PassDone()
			return nil
		case <-tk.C:
			cb.PassDone()
		}
	}
}

// sendersPollInterval is how often a tracer that streams no reset events
// reads the packet-level ring buffer.
const sendersPollInterval = 50 * time.Millisecond
