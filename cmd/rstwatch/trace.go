package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
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

const traceAbout = `rstwatch trace: stream every TCP reset this host sends or receives, with the owning
process and the kernel's reason; print a summary at the end. Needs root (or the
capabilities that 'rstwatch doctor' names).`

const traceExamples = `  sudo rstwatch                                   every reset, as a table, until Ctrl-C
  sudo rstwatch trace --output json --duration 1m > resets.jsonl
  sudo rstwatch trace --port 2181 --count 100     resets to or from port 2181
  sudo rstwatch trace --zk-port 2181              …with ZooKeeper versions and verdicts
  sudo rstwatch trace --pid 4211                  resets owned or emitted by process 4211
  sudo rstwatch trace --netns blue                resets in the namespace 'ip netns add blue' made
`

// procRoot is where the flags look up processes and namespaces.
const procRoot = "/proc"

// traceFlags are the flags trace shares with serve.
type traceFlags struct {
	ports    []string
	pid      uint32
	netns    uint32
	ringSize int
	owners   int
	debug    bool
	senders  bool
	zk       zkFlags
	workload workloadFlags
}

func (f *traceFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.ports, "port", nil, "only resets whose local or remote port is `P` (repeatable or comma list; filtered in the kernel)")
	fs.Var(&value[uint32]{p: &f.pid, typ: "PID", show: uintString[uint32], parse: func(s string) (uint32, error) { return parsePID(procRoot, s) }},
		"pid", "only resets whose socket owner or current task is process `PID` (filtered in the kernel)")
	fs.Var(&value[uint32]{p: &f.netns, typ: "netns", show: uintString[uint32], parse: func(s string) (uint32, error) { return parseNetNS(procRoot, s) }},
		"netns", "only resets in this network `namespace`: its inode (ls -Li /proc/PID/ns/net), an 'ip netns' name, or a path")
	sizeFlag(fs, &f.ringSize, "ring-buffer-size", "8M", ringBufferSize, "kernel ring buffer `size`, a power of two (256K, 8M, 64M)")
	numberFlag(fs, &f.owners, "owner-table-size", tracer.DefaultOwnerTableSize, 1, math.MaxInt32,
		"want a number of sockets from 1 to 2147483647", "slots for the owners of live sockets (4 per bucket; half as many for closed connections); an owner refused by a full bucket is counted and reported")
	fs.BoolVar(&f.debug, "debug", false, "log debug detail, including the kernel verifier's log on load failures")
	fs.BoolVar(&f.senders, "all-senders", false, "also watch every packet leaving any device for resets the TCP stack did not make (firewall rejects, raw sockets), and name their sender; costs a check per packet")
	f.zk.register(fs)
	f.workload.register(fs)
}

// tracerConfig checks what the flag types could not and returns the
// tracer's configuration; every error is a usage error.
func (f *traceFlags) tracerConfig() (tracer.Config, error) {
	var cfg tracer.Config
	ports, err := parsePorts(f.ports)
	if err != nil {
		return cfg, usageError("--port %v", err)
	}
	if len(ports) == 0 && len(f.ports) > 0 {
		return cfg, usageError("--port %q: no port given", strings.Join(f.ports, ","))
	}
	if err := f.zk.check(); err != nil {
		return cfg, err
	}
	if _, err := f.workload.check(); err != nil {
		return cfg, err
	}
	cfg.Ports, cfg.PID, cfg.NetNS, cfg.RingBufferSize, cfg.OwnerTableSize = ports, f.pid, f.netns, f.ringSize, f.owners
	cfg.AllSenders = f.senders
	return cfg, nil
}

// check finds usage errors in the ZooKeeper flags before anything is
// discovered or probed (zkFlags.setup parses them again, later).
func (z *zkFlags) check() error {
	if _, err := parsePorts(z.ports); err != nil {
		return usageError("--zk-port %v", err)
	}
	for _, s := range z.servers {
		if _, err := portOf(s); err != nil {
			return usageError("--zk %s: want host:port of a ZooKeeper server's client port, such as 10.0.0.5:2181", quoteIfOdd(s))
		}
	}
	// Below 100ms probes would come close to a load test of the server.
	if z.interval < 100*time.Millisecond {
		return usageError("--zk-probe-interval %v: want 100ms or more (such as 10s)", z.interval)
	}
	return nil
}

func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer, top bool) error {
	var (
		f         traceFlags
		format    string
		duration  time.Duration
		count     uint64
		readyFile string
		profile   string
	)
	c := newCommand("trace", traceAbout, traceExamples, stdout)
	c.top = top
	choiceFlag(c.FlagSet, &format, "output", "o", "table", []string{"table", "json"}, "output `format`: table or json (one JSON object per line)")
	durationFlag(c.FlagSet, &duration, "duration", 0, time.Millisecond,
		"want a positive duration such as 30s or 5m (leave it out to trace until Ctrl-C)", "stop after this long (e.g. 30s, 5m); default: until Ctrl-C/SIGTERM")
	numberFlag(c.FlagSet, &count, "count", 0, 1, math.MaxUint64, "want a number of resets, 1 or more (leave it out for no limit)", "stop after `N` resets")
	f.register(c.FlagSet)
	c.StringVar(&readyFile, "ready-file", "", "create this `file` once the programs are attached (for scripts and tests)")
	c.StringVar(&profile, "cpuprofile", "", "write a Go CPU profile of rstwatch itself to this `file`")
	c.MarkHidden("cpuprofile")
	if err := c.parse(args); err != nil {
		return err
	}
	if err := c.noArgs(); err != nil {
		return err
	}
	cfg, err := f.tracerConfig()
	if err != nil {
		return err
	}
	var sink output.Sink = output.NewTable(stdout)
	if format == "json" {
		sink = output.NewJSON(stdout)
	}
	log := newLogger(stderr, f.debug, "text")
	if profile != "" {
		stop, err := startProfile(profile)
		if err != nil {
			return usageError("%v", err)
		}
		defer stop()
	}

	// Setup, in the order an operator fixes things: privileges, BTF and
	// tracefs first, then what the ZooKeeper flags name or the host runs
	// (its ports go into the kernel's configuration), then loading.
	if err := tracer.Preflight(); err != nil {
		return log.setupFailed(err, f.debug, stderr)
	}
	var rec *traceReconcile
	l, err := f.load(ctx, cfg, log, stderr, func(cfg *tracer.Config) { rec = newTraceReconcile(ctx, cfg, &f, count) })
	if err != nil {
		return err
	}
	defer l.close()
	t, zs, ws := l.t, l.zs, l.ws
	if table, ok := sink.(*output.Table); ok {
		table.Workload = ws.resolver != nil
	}
	rec.tracker.Start()
	if readyFile != "" {
		if err := os.WriteFile(readyFile, []byte("ready\n"), 0o644); err != nil {
			log.Warn("writing the ready file failed", "error", err)
		}
	}

	zs.start(ctx, f.zk.interval)
	// Said on stderr once, so that a quiet host's empty screen is not
	// taken for a hang (as tcpdump says "listening on").
	log.Info("tracing TCP resets; Ctrl-C stops and prints a summary")
	_, err = pipeline.Run(ctx, t, pipeline.Options{
		Duration:      duration,
		Count:         count,
		Sinks:         []output.Sink{sink},
		Enricher:      rec.enricher(pipeline.Chain(ws.enricher(), zs.enricher)),
		Skip:          rec.tracker.CountSkipped(zs.skip),
		Keep:          ws.keep(),
		Log:           log.Logger,
		BeforeSummary: rec.beforeSummary,
	})
	return err
}

// loaded is what trace and serve share once privileges, BTF and tracefs
// are checked: the ZooKeeper and workload enrichment and the attached
// programs.
type loaded struct {
	t  *tracer.Tracer
	zs zkSetup
	ws *workloadSetup
	lg *slog.Logger
}

// load runs the rest of the setup both commands share, in the order an
// operator fixes things: what the ZooKeeper flags name or the host runs
// (its ports go into the kernel's configuration), the workloads the
// filters select (their cgroups too), prepare's last word on the
// configuration (the reconciliation sets LocalAddr), then the programs.
// The held log is released once they are attached.
func (f *traceFlags) load(ctx context.Context, cfg tracer.Config, log held, stderr io.Writer, prepare func(*tracer.Config)) (*loaded, error) {
	zs, err := f.zk.setup(ctx, log.Logger)
	if err != nil {
		return nil, log.setupFailed(usageError("%v", err), f.debug, stderr)
	}
	cfg.ZKPorts = zs.ports
	ws, err := f.workload.setup(log.Logger)
	if err != nil {
		return nil, log.setupFailed(err, f.debug, stderr)
	}
	ws.filter(&cfg)
	prepare(&cfg)
	t, err := tracer.Open(withLogger(cfg, log.Logger))
	if err != nil {
		ws.close()
		return nil, log.setupFailed(err, f.debug, stderr)
	}
	ws.follow(ctx, t, log.Logger)
	log.setupDone()
	for _, d := range t.Degraded() {
		log.Warn("reduced attribution on this kernel", "detail", d)
	}
	return &loaded{t: t, zs: zs, ws: ws, lg: log.Logger}, nil
}

// close detaches the programs, then stops naming workloads.
func (l *loaded) close() {
	closeTracer(l.t, l.lg)
	l.ws.close()
}

func withLogger(cfg tracer.Config, log *slog.Logger) tracer.Config {
	cfg.Logger = log
	return cfg
}

// closeTracer detaches the programs; it is deferred right after Open, so
// every exit path runs it.
func closeTracer(t *tracer.Tracer, log *slog.Logger) {
	at := time.Now()
	if err := t.Close(); err != nil {
		log.Warn("detaching the programs", "error", err)
	}
	log.Debug("detached the programs", "took", time.Since(at))
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
				return nil, fmt.Errorf("%s: want a port number from 1 to 65535", quoteIfOdd(p))
			}
			ports = append(ports, uint16(n))
		}
	}
	return ports, nil
}
