package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rstwatch/rstwatch/bench/churn"
	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// Options configure a bench.
type Options struct {
	Rstwatch string        // the rstwatch binary under test
	Rounds   int           // every configuration runs once per round and shape
	Duration time.Duration // of one storm
	Workers  int           // storm threads
	// Settle is the pause between the storm's end and stopping the tracer,
	// so it can drain what it buffered.
	Settle  time.Duration
	Shapes  []storm.Shape
	Only    []string // configuration names; empty: all (the baseline always runs)
	Keep    bool     // keep the tracers' output files
	WorkDir string   // where tracers write; "": a new temporary directory
	Exe     string   // the binary that runs storm children
	Log     io.Writer
}

// Runner runs one bench.
type Runner struct {
	o       Options
	tracers []Tracer
	skipped map[string]string
	// stats holds BPF run-time statistics on while it is open.
	stats io.Closer
}

func NewRunner(o Options) *Runner {
	r := &Runner{o: o, skipped: map[string]string{}}
	for _, t := range Tracers(o.Rstwatch) {
		if t.Name == Baseline || len(o.Only) == 0 || slices.Contains(o.Only, t.Name) {
			r.tracers = append(r.tracers, t)
		}
	}
	return r
}

func (r *Runner) logf(format string, args ...any) {
	fmt.Fprintf(r.o.Log, format+"\n", args...)
}

// Run benchmarks every configuration and returns the report, partial when
// ctx is cancelled (with ctx's error).
func (r *Runner) Run(ctx context.Context) (*Report, error) {
	rep := &Report{Env: collectEnv(), Options: reportOptions(r.o)}
	if slices.Contains(r.o.Shapes, storm.Churn) {
		if why := churn.Missing(); why != "" {
			r.o.Shapes = slices.DeleteFunc(r.o.Shapes, func(s storm.Shape) bool { return s == storm.Churn })
			r.skip(rep, string(storm.Churn), why)
		}
	}
	for _, t := range r.tracers {
		rep.Tracers = append(rep.Tracers, TracerInfo{Name: t.Name, How: t.How})
		if t.Unavailable == nil {
			continue
		}
		if why := t.Unavailable(); why != "" {
			r.skip(rep, t.Name, why)
		}
	}
	if r.o.WorkDir == "" {
		dir, err := os.MkdirTemp("", "rstwatch-bench-")
		if err != nil {
			return nil, fmt.Errorf("work directory: %w", err)
		}
		defer os.RemoveAll(dir)
		r.o.WorkDir = dir
	}
	// Held by fd rather than set by sysctl: the kernel turns statistics off
	// again however the harness ends.
	if err := r.statsOn(); err != nil {
		return nil, err
	}
	defer r.statsOff()

	err := r.rounds(ctx, rep)
	rep.Env.LoadEnd = loadAvg()
	rep.finish()
	return rep, err
}

// statsOn turns the kernel's BPF run-time statistics on (idempotent).
func (r *Runner) statsOn() error {
	if r.stats != nil {
		return nil
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return fmt.Errorf("enabling BPF run-time statistics: %w", err)
	}
	r.stats = stats
	return nil
}

// statsOff lets the kernel stop the accounting, unless something else on
// the host holds it on.
func (r *Runner) statsOff() {
	if r.stats != nil {
		r.stats.Close()
		r.stats = nil
	}
}

func (r *Runner) skip(rep *Report, name, why string) {
	r.skipped[name] = why
	rep.Skipped = append(rep.Skipped, Skip{Name: name, Why: why})
	r.logf("skipped: %s: %s", name, why)
}

func (r *Runner) rounds(ctx context.Context, rep *Report) error {
	base, others := r.tracers[0], r.tracers[1:]
	for round := 1; round <= r.o.Rounds; round++ {
		// Rotating the order spreads slow drift of the machine over all
		// configurations instead of always hitting the last one.
		order := rotate(others, round-1)
		for _, shape := range r.o.Shapes {
			// The bare storm runs first and last: the block is compared
			// with the mean of both, and their difference shows how much
			// the machine drifted meanwhile.
			block := append(append([]Tracer{base}, order...), base)
			var runs []Run
			for _, t := range block {
				if _, ok := r.skipped[t.Name]; ok || !t.runsIn(shape) {
					continue
				}
				run := r.measure(ctx, t, shape, round)
				if err := ctx.Err(); err != nil {
					return err
				}
				if t.Name == Baseline && run.Error != "" {
					return fmt.Errorf("baseline storm failed: %s", run.Error)
				}
				r.logf("%s", run.progress())
				if run.notReady {
					// A tracer that cannot start will not start next round.
					r.skip(rep, t.Name, run.Error)
				}
				runs = append(runs, run)
			}
			r.logf("%s", setRatios(runs))
			rep.Runs = append(rep.Runs, runs...)
		}
	}
	return nil
}

// setRatios divides each run's rate by the mean of the block's baseline
// rates, and says how far the two baselines were apart.
func setRatios(runs []Run) string {
	var sum float64
	var rates []float64
	for _, r := range runs {
		if r.Config == Baseline && r.Error == "" {
			sum += r.Rate
			rates = append(rates, r.Rate)
		}
	}
	if sum == 0 {
		return "no baseline rate: no ratios"
	}
	mean := sum / float64(len(rates))
	for i := range runs {
		if runs[i].Error == "" {
			ratio := runs[i].Rate / mean
			runs[i].Ratio = &ratio
		}
	}
	return fmt.Sprintf("round %d %-8s baseline %.0f %s/s (drift %s)", runs[0].Round, runs[0].Shape, mean, rateUnit(runs[0].Shape), driftText(rates))
}

// drift is how far apart a block's baseline rates are, relative to their mean.
func drift(rates []float64) float64 {
	if len(rates) < 2 {
		return 0
	}
	lo, hi, sum := rates[0], rates[0], 0.0
	for _, r := range rates {
		lo, hi, sum = min(lo, r), max(hi, r), sum+r
	}
	return (hi - lo) / (sum / float64(len(rates)))
}

func driftText(rates []float64) string {
	return fmt.Sprintf("%.1f%%", 100*drift(rates))
}

func rotate(ts []Tracer, n int) []Tracer {
	if len(ts) == 0 {
		return nil
	}
	n %= len(ts)
	return append(slices.Clone(ts[n:]), ts[:n]...)
}

// measure runs one storm under one configuration.
func (r *Runner) measure(ctx context.Context, t Tracer, shape storm.Shape, round int) Run {
	run := Run{Round: round, Shape: shape, Config: t.Name}
	dir, err := os.MkdirTemp(r.o.WorkDir, fmt.Sprintf("%s-%s-%d-", t.Name, shape, round))
	if err != nil {
		run.Error = err.Error()
		return run
	}
	if !r.o.Keep {
		defer os.RemoveAll(dir)
	}
	if err := r.measureIn(ctx, t, shape, dir, &run); err != nil {
		run.Error = err.Error()
		run.notReady = errors.Is(err, errNotReady)
	}
	return run
}

func (r *Runner) measureIn(ctx context.Context, t Tracer, shape storm.Shape, dir string, run *Run) (err error) {
	if shape == storm.Churn {
		return r.measureChurn(ctx, t, dir, run)
	}
	var s session
	if t.start != nil {
		if s, err = t.start(ctx, dir); err != nil {
			return err
		}
		stopped := false
		defer func() {
			if !stopped {
				s.stop(context.WithoutCancel(ctx))
			}
		}()
		progs, err := s.programs()
		if err != nil {
			return err
		}
		if progs != nil {
			defer progs.Close()
		}
		before, err := snapshot(progs)
		if err != nil {
			return err
		}
		if err := s.mark(); err != nil {
			return fmt.Errorf("%s before the storm: %w", t.Name, err)
		}
		rsts, _ := measure.TCPOutRsts()
		if err := r.storm(ctx, shape, max(r.o.Settle, t.settle), run); err != nil {
			return err
		}
		after, err := snapshot(progs)
		if err != nil {
			return err
		}
		run.kernelRsts(rsts)
		stopped = true
		tl, err := s.stop(ctx)
		events := run.Storm.Events()
		run.fill(tl, measure.DiffStats(before, after), events, events)
		return err
	}
	rsts, _ := measure.TCPOutRsts()
	err = r.storm(ctx, shape, r.o.Settle, run)
	run.kernelRsts(rsts)
	return err
}

// storm runs the storm, then waits settle for the tracer to catch up.
func (r *Runner) storm(ctx context.Context, shape storm.Shape, settle time.Duration, run *Run) error {
	res, err := storm.Spawn(ctx, r.o.Exe, shape, r.o.Workers, r.o.Duration)
	if err != nil {
		return err
	}
	run.Storm, run.Rate = res, res.Rate()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(settle):
	}
	return nil
}

func snapshot(p *measure.Programs) ([]measure.ProgStat, error) {
	if p == nil {
		return nil, nil
	}
	return p.Snapshot()
}

// churnStatsWindow is how long the churn runs again with BPF statistics on,
// to measure the programs' run time per connection.
const churnStatsWindow = time.Second

// measureChurn runs the connection churn under one configuration. nginx
// starts first, so that a tracer finds it already running, as it would on
// a real host. The rate is measured with BPF statistics off (the
// accounting costs two clock reads per program run, which a workload of
// ten program runs per connection would feel); then the churn runs again
// for churnStatsWindow with statistics on, for the programs' run time per
// connection.
func (r *Runner) measureChurn(ctx context.Context, t Tracer, dir string, run *Run) (err error) {
	srv, err := churn.Start(ctx, filepath.Join(dir, "nginx"))
	if err != nil {
		return err
	}
	defer func() {
		if serr := srv.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	defer r.statsOn()

	var (
		s     session
		progs *measure.Programs
	)
	if t.start != nil {
		if s, err = t.start(ctx, dir); err != nil {
			return err
		}
		stopped := false
		defer func() {
			if !stopped {
				s.stop(context.WithoutCancel(ctx))
			}
		}()
		if progs, err = s.programs(); err != nil {
			return err
		}
		if progs != nil {
			defer progs.Close()
		}
		if err := s.mark(); err != nil {
			return fmt.Errorf("%s before the churn: %w", t.Name, err)
		}
		defer func() {
			stopped = true
			tl, serr := s.stop(ctx)
			var load, stats uint64
			if run.Churn != nil {
				load += run.Churn.Requests
			}
			if run.ChurnStats != nil {
				stats = run.ChurnStats.Requests
				load += stats
			}
			run.fill(tl, run.BPF, stats, load)
			if err == nil {
				err = serr
			}
		}()
	}

	r.statsOff()
	res, err := churn.Load(ctx, srv.URL, r.o.Duration)
	if err != nil {
		return err
	}
	run.Churn, run.Rate = &res, res.Rate()
	if err := r.statsOn(); err != nil {
		return err
	}
	before, err := snapshot(progs)
	if err != nil {
		return err
	}
	sres, err := churn.Load(ctx, srv.URL, churnStatsWindow)
	if err != nil {
		return err
	}
	after, err := snapshot(progs)
	if err != nil {
		return err
	}
	run.ChurnStats = &sres
	run.BPF = measure.DiffStats(before, after)
	if res.Errors+sres.Errors > 0 {
		run.Note = fmt.Sprintf("wrk errors: %d", res.Errors+sres.Errors)
	}
	return nil
}
