package harness

import (
	"context"
	"fmt"

	"github.com/rstwatch/rstwatch/bench/floor"
	"github.com/rstwatch/rstwatch/bench/measure"
)

const (
	floorEmpty = floor.Empty
	floorCount = floor.Count
)

// floorTracer runs inside the harness: its cost is all in the kernel, in
// the storm's own context, so there is no tracer process to measure.
func floorTracer(k floor.Kind) Tracer {
	how := "own BPF: return 0 on both reset tracepoints (cilium/ebpf)"
	if k == floor.Count {
		how = "own BPF: per-CPU array counter on both reset tracepoints (cilium/ebpf)"
	}
	return Tracer{
		Name: "floor-" + k.String(),
		How:  how,
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
	f      *floor.Floor
	kind   floor.Kind
	before uint64
}

func (s *floorSession) pid() int { return 0 }

func (s *floorSession) programs() (*measure.Programs, error) {
	return measure.WrapPrograms(s.f.Programs()), nil
}

func (s *floorSession) mark() error {
	if s.kind != floor.Count {
		return nil
	}
	n, err := s.f.Count()
	s.before = n
	return err
}

func (s *floorSession) stop(context.Context) (tally, error) {
	tl := tally{PerReset: 2, Unit: "events"}
	defer s.f.Close()
	if s.kind != floor.Count {
		// The empty program counts nothing; its run count is in the BPF
		// statistics.
		tl.FromRunCount = true
		return tl, nil
	}
	n, err := s.f.Count()
	if err != nil {
		return tl, fmt.Errorf("floor count: %w", err)
	}
	tl.Received = n - s.before
	return tl, nil
}
