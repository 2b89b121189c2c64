package floor

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Kind selects which pair of programs is attached.
type Kind int

const (
	// Empty returns at once: the cost of being attached at all.
	Empty Kind = iota
	// Count increments a per-CPU counter: the cheapest useful aggregation.
	Count
)

func (k Kind) String() string {
	if k == Count {
		return "count"
	}
	return "empty"
}

// Floor is one kind of floor program attached to both reset tracepoints.
type Floor struct {
	objs  floorObjects
	progs []*ebpf.Program
	links []link.Link
}

// Attach loads the floor object and attaches the programs of kind k to
// tcp:tcp_send_reset and tcp:tcp_receive_reset.
func Attach(k Kind) (*Floor, error) {
	f := &Floor{}
	if err := loadFloorObjects(&f.objs, nil); err != nil {
		return nil, fmt.Errorf("loading the floor programs: %w", err)
	}
	send, recv := f.objs.EmptySend, f.objs.EmptyReceive
	if k == Count {
		send, recv = f.objs.CountSend, f.objs.CountReceive
	}
	for _, a := range []struct {
		name string
		prog *ebpf.Program
	}{{"tcp_send_reset", send}, {"tcp_receive_reset", recv}} {
		l, err := link.Tracepoint("tcp", a.name, a.prog, nil)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("attaching the %s floor to tcp:%s: %w", k, a.name, err)
		}
		f.links = append(f.links, l)
		f.progs = append(f.progs, a.prog)
	}
	return f, nil
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
	errs = append(errs, f.objs.Close())
	return errors.Join(errs...)
}
