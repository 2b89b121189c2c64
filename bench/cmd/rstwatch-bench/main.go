// Command rstwatch-bench measures what tracing costs: on TCP reset storms,
// rstwatch (streaming JSON and always-on serve) against tcpdump, bpftrace
// and the bench's own minimal BPF programs; on connection churn without
// resets (nginx and wrk), rstwatch against empty programs on the same hooks;
// each relative to the bare workload in the same round. It needs root. See
// `make bench`.
//
//	go build -o rstwatch ./cmd/rstwatch
//	sudo go run ./bench/cmd/rstwatch-bench -rstwatch ./rstwatch [-quick]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/rstwatch/rstwatch/bench/harness"
	"github.com/rstwatch/rstwatch/bench/storm"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rstwatch-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rstwatch-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o          harness.Options
		quick      bool
		only       string
		shapes     string
		resultsDir string
		child      string
	)
	fs.StringVar(&o.Rstwatch, "rstwatch", "./rstwatch", "the rstwatch `binary` to benchmark")
	fs.IntVar(&o.Rounds, "rounds", 4, "rounds; each runs every configuration once per workload")
	fs.DurationVar(&o.Duration, "duration", 4*time.Second, "length of one storm or churn run")
	fs.IntVar(&o.Workers, "workers", runtime.NumCPU(), "storm threads")
	fs.DurationVar(&o.Settle, "settle", 500*time.Millisecond, "pause after a storm before stopping the tracer, so it can drain")
	fs.BoolVar(&quick, "quick", false, "smoke test: 1 round, 1s runs")
	fs.StringVar(&only, "only", "", "comma-separated configurations to run besides the baseline (default: all)")
	fs.StringVar(&shapes, "shapes", "refused,linger,churn", "comma-separated workloads: storm shapes and churn")
	fs.StringVar(&resultsDir, "results", "bench/results", "`directory` for the JSON results")
	fs.BoolVar(&o.Keep, "keep", false, "keep the tracers' output files (in -workdir)")
	fs.StringVar(&o.WorkDir, "workdir", "", "`directory` for the tracers' output (default: a temporary one, removed)")
	fs.StringVar(&child, storm.ChildFlag, "", "internal: run one storm of this `shape` and print its result")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if child != "" {
		return storm.ChildMain(child, o.Workers, o.Duration, stdout)
	}
	if quick {
		o.Rounds, o.Duration, o.Settle = 1, time.Second, 200*time.Millisecond
	}
	if o.Rounds < 1 || o.Duration <= 0 || o.Workers < 1 {
		return fmt.Errorf("-rounds, -duration and -workers must be positive")
	}
	for _, s := range splitList(shapes) {
		sh, err := storm.ParseShape(s)
		if err != nil {
			return err
		}
		o.Shapes = append(o.Shapes, sh)
	}
	o.Only = splitList(only)
	if os.Geteuid() != 0 {
		return errors.New("needs root: it loads BPF programs and runs tcpdump and bpftrace")
	}
	var err error
	if o.Rstwatch, err = filepath.Abs(o.Rstwatch); err != nil {
		return fmt.Errorf("-rstwatch: %w", err)
	}
	if o.Exe, err = storm.Executable(); err != nil {
		return err
	}
	o.Log = stderr

	rep, runErr := harness.NewRunner(o).Run(ctx)
	if rep == nil {
		return runErr
	}
	rep.Markdown(stdout)
	path, err := rep.Save(resultsDir)
	if err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(stderr, "results: %s\n", path)
	if runErr != nil {
		return fmt.Errorf("bench stopped early (partial results saved): %w", runErr)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
