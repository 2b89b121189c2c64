// Package harness runs rstwatch-bench: it alternates tracer configurations
// against the same reset storm over several rounds and reports each one
// relative to the round's bare storm, with the targets.
package harness

import (
	"context"
	"slices"
	"time"

	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// Tracer is one configuration under test.
type Tracer struct {
	Name string
	// How is the command line or program, for the report.
	How string
	// Unavailable says why the configuration cannot run here, "" if it can.
	Unavailable func() string
	// settle, when longer than Options.Settle, is how long this tracer
	// needs after the storm to have everything in its output.
	settle time.Duration
	start  func(ctx context.Context, dir string) (session, error)
	// shapes are the workloads the configuration runs in; nil: the storms.
	shapes []storm.Shape
}

// runsIn says whether the configuration takes part in a workload.
func (t Tracer) runsIn(sh storm.Shape) bool {
	if t.shapes == nil {
		return sh.IsStorm()
	}
	return slices.Contains(t.shapes, sh)
}

// session is a started tracer, attached and ready for the storm.
type session interface {
	// pid is the tracer's process, 0 when it runs inside the harness.
	pid() int
	// programs are the tracer's BPF programs, nil when it has none.
	programs() (*measure.Programs, error)
	// mark is called just before the storm: CPU and counters from here on
	// are the storm's.
	mark() error
	// stop ends the tracer after the storm and tells what reached it.
	stop(ctx context.Context) (tally, error)
}

// tally is what a tracer received, in its own unit.
type tally struct {
	Received uint64
	// PerReset is units per reset: 2 for tracepoint events, 1 for packets.
	PerReset uint64
	Unit     string
	// Lost is what the tracer itself says it dropped; nil when it cannot tell.
	Lost *uint64
	// CPU is user+sys time from mark to exit; HaveCPU is false in-process.
	CPU     time.Duration
	HaveCPU bool
	PeakRSS uint64
	Note    string
	// FromRunCount: the tracer counts nothing itself; what it received is
	// its programs' run count.
	FromRunCount bool
}
