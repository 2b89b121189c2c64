package harness

import (
	"context"
	"fmt"

	"github.com/rstwatch/rstwatch/bench/floor"
	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

const (
	floorEmpty        = floor.Empty
	floorCount        = floor.Count
	floorHooksClassic = floor.HooksClassic
	floorHooksTyped   = floor.HooksTyped
	floorRing         = floor.Ring
)

// floorTracer runs inside the harness: its cost is all in the kernel, in
// the storm's own context, so there is no tracer process to measure. The
// reset-tracepoint floors run in the storms; the every-hook floors run in
// the churn, where the reset programs never run, and in the storms, where
// they show what being attached to rstwatch's other hooks costs a reset.
func floorTracer(k floor.Kind) Tracer {
	how := "own BPF: return 0 on both reset tracepoints (cilium/ebpf)"
	var shapes []storm.Shape
	switch k {
	case floor.Count:
		how = "own BPF: per-CPU array counter on both reset tracepoints (cilium/ebpf)"
	case floor.HooksClassic:
		how = "own BPF: return 0 on every hook rstwatch uses, as classic tracepoints"
		shapes = storm.Shapes
	case floor.HooksTyped:
		how = "own BPF: return 0 on every hook rstwatch uses, BTF-typed (tp_btf) but for the accept syscall tracepoints"
		shapes = storm.Shapes
	case floor.Ring:
		how = "own BPF: a 152-byte record (rstwatch's) per event into an 8 MiB ring buffer on both reset tracepoints (tp_btf), no wake-up; the bench's reader drains it every 5 ms and only counts"
		shapes = []storm.Shape{storm.Refused, storm.Linger}
	}
	return Tracer{
		Name:   "floor-" + k.String(),
		How:    how,
		shapes: shapes,
		start: func(context.Context, string) (session, error) {
			f, err := floor.Attach(k)
			if err != nil {
				return nil, err
			}
			return &floorSession{f: f, kind: k}, nil
		},
	}
}

type floorSession struct {
	f          *floor.Floor
	kind       floor.Kind
	before     uint64
	lostBefore uint64
}

func (s *floorSession) pid() int { return 0 }

func (s *floorSession) programs() (*measure.Programs, error) {
	return measure.WrapPrograms(s.f.Programs()), nil
}

func (s *floorSession) mark() error {
	var err error
	switch s.kind {
	case floor.Count:
		s.before, err = s.f.Count()
	case floor.HooksClassic, floor.HooksTyped:
		s.before, err = s.f.ResetRuns()
	case floor.Ring:
		s.before, s.lostBefore, err = s.f.RingRead()
	}
	return err
}

func (s *floorSession) stop(context.Context) (tally, error) {
	tl := tally{PerReset: 2, Unit: "events"}
	defer s.f.Close()
	switch s.kind {
	case floor.Empty:
		// The empty programs count nothing; their run count is in the BPF
		// statistics.
		tl.FromRunCount = true
		return tl, nil
	case floor.HooksClassic, floor.HooksTyped:
		// Only the reset programs' runs are events; the other hooks run
		// for every socket too.
		n, err := s.f.ResetRuns()
		if err != nil {
			return tl, err
		}
		tl.Received = n - s.before
		return tl, nil
	case floor.Ring:
		n, lost, err := s.f.RingRead()
		if err != nil {
			return tl, err
		}
		lost -= s.lostBefore
		tl.Received, tl.Lost = n-s.before, &lost
		return tl, nil
	}
	n, err := s.f.Count()
	if err != nil {
		return tl, fmt.Errorf("floor count: %w", err)
	}
	tl.Received = n - s.before
	return tl, nil
}
