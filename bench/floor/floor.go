package floor

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
)

// Kind selects which programs are attached.
type Kind int

const (
	// Empty returns at once on the two reset tracepoints: the cost of being
	// attached there at all.
	Empty Kind = iota
	// Count increments a per-CPU counter on the two reset tracepoints: the
	// cheapest useful aggregation.
	Count
	// HooksClassic returns at once on every hook rstwatch uses, all as
	// classic tracepoints.
	HooksClassic
	// HooksTyped returns at once on every hook rstwatch uses, BTF-typed
	// (tp_btf) where the hook has a typed form (all but accept).
	HooksTyped
	// Ring streams a record of rstwatch's size per event through a ring
	// buffer of rstwatch's default size to a reader that only counts: the
	// ceiling for a tracer that streams every event.
	Ring
)

func (k Kind) String() string {
	switch k {
	case Count:
		return "count"
	case HooksClassic:
		return "hooks-classic"
	case HooksTyped:
		return "hooks-typed"
	case Ring:
		return "ring"
	}
	return "empty"
}

// Floor is one kind of floor program set, attached.
type Floor struct {
	objs   floorObjects
	progs  []*ebpf.Program
	resets []*ebpf.Program // those of progs on the two reset tracepoints
	links  []link.Link

	// The Ring kind's reader.
	ring *ringbuf.Reader
	read atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

// attachment is one program and where it goes.
type attachment struct {
	prog        *ebpf.Program
	group, name string // tracepoint; group "" is a tp_btf program
}

func (f *Floor) attachments(k Kind) []attachment {
	o := &f.objs
	switch k {
	case Empty:
		return []attachment{{o.EmptySend, "tcp", "tcp_send_reset"}, {o.EmptyReceive, "tcp", "tcp_receive_reset"}}
	case Count:
		return []attachment{{o.CountSend, "tcp", "tcp_send_reset"}, {o.CountReceive, "tcp", "tcp_receive_reset"}}
	case Ring:
		return []attachment{{o.RingSend, "", "tcp_send_reset"}, {o.RingReceive, "", "tcp_receive_reset"}}
	}
	accept := []attachment{
		{o.HookClassicAccept4, "syscalls", "sys_exit_accept4"},
		{o.HookClassicAccept, "syscalls", "sys_exit_accept"},
	}
	if k == HooksClassic {
		return append([]attachment{
			{o.HookClassicSendReset, "tcp", "tcp_send_reset"},
			{o.HookClassicReceiveReset, "tcp", "tcp_receive_reset"},
			{o.HookClassicSetState, "sock", "inet_sock_set_state"},
			{o.HookClassicDestroySock, "tcp", "tcp_destroy_sock"},
			{o.HookClassicExit, "sched", "sched_process_exit"},
		}, accept...)
	}
	return append([]attachment{
		{o.HookTypedSendReset, "", "tcp_send_reset"},
		{o.HookTypedReceiveReset, "", "tcp_receive_reset"},
		{o.HookTypedSetState, "", "inet_sock_set_state"},
		{o.HookTypedDestroySock, "", "tcp_destroy_sock"},
		{o.HookTypedExit, "", "sched_process_exit"},
	}, accept...)
}

// Attach loads the floor object and attaches the programs of kind k.
func Attach(k Kind) (*Floor, error) {
	f := &Floor{}
	if err := loadFloorObjects(&f.objs, nil); err != nil {
		return nil, fmt.Errorf("loading the floor programs: %w", err)
	}
	for _, a := range f.attachments(k) {
		var (
			l   link.Link
			err error
		)
		if a.group == "" {
			l, err = link.AttachTracing(link.TracingOptions{Program: a.prog})
		} else {
			l, err = link.Tracepoint(a.group, a.name, a.prog, nil)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("attaching the %s floor to %s: %w", k, strings.TrimPrefix(a.group+":"+a.name, ":"), err)
		}
		f.links = append(f.links, l)
		f.progs = append(f.progs, a.prog)
		if a.name == "tcp_send_reset" || a.name == "tcp_receive_reset" {
			f.resets = append(f.resets, a.prog)
		}
	}
	if k == Ring {
		rd, err := ringbuf.NewReader(f.objs.FloorRing)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("opening the ring floor's ring buffer: %w", err)
		}
		f.ring, f.stop, f.done = rd, make(chan struct{}), make(chan struct{})
		go f.drain()
	}
	return f, nil
}

// ringPoll is how often the ring floor's reader drains, as rstwatch's
// while records come.
const ringPoll = 5 * time.Millisecond

// drain counts the ring's records every ringPoll, waiting on a timer
// between passes, until stop is closed; a last pass takes what is left.
func (f *Floor) drain() {
	defer close(f.done)
	var rec ringbuf.Record
	for stopped := false; !stopped; {
		select {
		case <-f.stop:
			stopped = true
		case <-time.After(ringPoll):
		}
		f.ring.SetDeadline(time.Now())
		for f.ring.ReadInto(&rec) == nil {
			f.read.Add(1)
		}
	}
}

// RingRead is how many records the ring floor's reader has counted, and
// how many the programs could not reserve (the ring was full).
func (f *Floor) RingRead() (read, lost uint64, err error) {
	var perCPU []uint64
	if err := f.objs.FloorLost.Lookup(uint32(0), &perCPU); err != nil {
		return 0, 0, fmt.Errorf("reading the ring floor's lost counter: %w", err)
	}
	for _, v := range perCPU {
		lost += v
	}
	return f.read.Load(), lost, nil
}

// ResetRuns sums the run counts of the programs on the two reset
// tracepoints: the events an empty floor saw (BPF statistics must be on).
func (f *Floor) ResetRuns() (uint64, error) {
	var n uint64
	for _, p := range f.resets {
		st, err := p.Stats()
		if err != nil {
			return 0, fmt.Errorf("reading a floor program's statistics: %w", err)
		}
		n += st.RunCount
	}
	return n, nil
}

// Programs are the attached programs, for their run-time statistics.
func (f *Floor) Programs() []*ebpf.Program { return f.progs }

// Count sums the per-CPU counter: the events the count programs saw.
func (f *Floor) Count() (uint64, error) {
	var perCPU []uint64
	if err := f.objs.FloorCounts.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("reading the floor counter: %w", err)
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// Close detaches and unloads everything.
func (f *Floor) Close() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	f.links = nil
	if f.ring != nil {
		close(f.stop)
		<-f.done
		errs = append(errs, f.ring.Close())
		f.ring = nil
	}
	errs = append(errs, f.objs.Close())
	return errors.Join(errs...)
}
