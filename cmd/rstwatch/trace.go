package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/rstwatch/rstwatch/internal/output"
	"github.com/rstwatch/rstwatch/internal/pipeline"
	"github.com/rstwatch/rstwatch/tracer"
)

const traceExamples = `  sudo rstwatch                                   every reset, as a table, until Ctrl-C
  sudo rstwatch trace --output json --duration 1m > resets.jsonl
  sudo rstwatch trace --port 2181 --count 100     resets to or from port 2181
  sudo rstwatch trace --zk-port 2181              …with ZooKeeper versions and verdicts
  sudo rstwatch trace --pid 4211                  resets owned or emitted by process 4211
`

// traceFlags are the flags trace shares with serve.
type traceFlags struct {
	ports    []string
	pid      uint32
	netns    uint32
	ringSize string
	owners   int
	debug    bool
	zk       zkFlags
}

func (f *traceFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.ports, "port", nil, "only resets whose local or remote port is `P` (repeatable or comma list; filtered in the kernel)")
	fs.Uint32Var(&f.pid, "pid", 0, "only resets whose socket owner or current task is process `PID` (filtered in the kernel)")
	fs.Uint32Var(&f.netns, "netns", 0, "only resets in the network namespace with this `inode` (ls -L -i /proc/PID/ns/net)")
	fs.StringVar(&f.ringSize, "ring-buffer-size", "8M", "kernel ring buffer `size` (power of two: 256K, 8M, 64M)")
	fs.IntVar(&f.owners, "owner-table-size", tracer.DefaultOwnerTableSize, "sockets (and closed connections) whose owners the kernel remembers; a full table is counted and reported")
	fs.BoolVar(&f.debug, "debug", false, "log debug detail, including the kernel verifier's log on load failures")
	f.zk.register(fs)
}

func (f *traceFlags) tracerConfig() (tracer.Config, error) {
	var cfg tracer.Config
	ports, err := parsePorts(f.ports)
	if err != nil {
		return cfg, err
	}
	size, err := parseSize(f.ringSize)
	if err != nil {
		return cfg, fmt.Errorf("--ring-buffer-size: %w", err)
	}
	if f.owners < 1 {
		return cfg, fmt.Errorf("--owner-table-size must be at least 1")
	}
	cfg.Ports, cfg.PID, cfg.NetNS, cfg.RingBufferSize, cfg.OwnerTableSize = ports, f.pid, f.netns, size, f.owners
	return cfg, nil
}

func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		f         traceFlags
		format    string
		duration  time.Duration
		count     uint64
		readyFile string
		profile   string
	)
	fs := newFlags("trace", "rstwatch trace: stream every TCP reset this host sends or receives, with the owning\nprocess and the kernel's reason; print a summary at the end. Needs root.", traceExamples, stderr)
	fs.StringVarP(&format, "output", "o", "table", "output `format`: table or json (one JSON object per line)")
	fs.DurationVar(&duration, "duration", 0, "stop after this long (e.g. 30s, 5m); default: until Ctrl-C/SIGTERM")
	fs.Uint64Var(&count, "count", 0, "stop after `N` resets")
	f.register(fs)
	fs.StringVar(&readyFile, "ready-file", "", "create this `file` once the programs are attached (for scripts and tests)")
	fs.StringVar(&profile, "cpuprofile", "", "write a Go CPU profile of rstwatch itself to this `file`")
	fs.MarkHidden("cpuprofile")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("trace takes no arguments, got %q", fs.Args())}
	}
	var sink output.Sink
	switch format {
	case "table":
		sink = output.NewTable(stdout)
	case "json":
		sink = output.NewJSON(stdout)
	default:
		return &exitError{2, fmt.Errorf("--output %q: want table or json", format)}
	}
	cfg, err := f.tracerConfig()
	if err != nil {
		return &exitError{2, err}
	}
	log := newLogger(stderr, f.debug, "text")
	if profile != "" {
		stop, err := startProfile(profile)
		if err != nil {
			return &exitError{2, err}
		}
		defer stop()
	}
	zkSetup, err := f.zk.setup(ctx, log)
	if err != nil {
		return &exitError{2, err}
	}
	zkSetup.start(ctx, f.zk.interval)
	_, err = pipeline.Run(ctx, pipeline.Options{
		Tracer:   cfg,
		Duration: duration,
		Count:    count,
		Sinks:    []output.Sink{sink},
		Enricher: zkSetup.enricher,
		Skip:     zkSetup.skip,
		Log:      log,
		Ready: func(*tracer.Tracer) {
			if readyFile != "" {
				if err := os.WriteFile(readyFile, []byte("ready\n"), 0o644); err != nil {
					log.Warn("writing the ready file failed", "error", err)
				}
			}
		},
	})
	if err != nil {
		return setupFailure(err, f.debug, stderr)
	}
	return nil
}

func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func parsePorts(list []string) ([]uint16, error) {
	var ports []uint16
	for _, s := range list {
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if p == "" {
				continue
			}
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("port %q: want a number from 1 to 65535", p)
			}
			ports = append(ports, uint16(n))
		}
	}
	return ports, nil
}

// parseSize reads 4096, 256K, 8M, 1G (binary multiples).
func parseSize(s string) (int, error) {
	mult := 1
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, strings.TrimSuffix(t, "M")
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, strings.TrimSuffix(t, "G")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want bytes or a number with K, M or G", s)
	}
	return n * mult, nil
}
