package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"

	"github.com/rstwatch/rstwatch/internal/metrics"
	"github.com/rstwatch/rstwatch/internal/output"
	"github.com/rstwatch/rstwatch/internal/pipeline"
	"github.com/rstwatch/rstwatch/tracer"
	"github.com/rstwatch/rstwatch/zk/diagnose"
)

const serveExamples = `  sudo rstwatch serve                                    metrics on http://127.0.0.1:9464/metrics
  sudo rstwatch serve --zk-port 2181 --log-format json
  sudo rstwatch serve --metrics-addr 10.0.0.5:9464       listen where Prometheus can reach it
  sudo rstwatch serve --events-file /var/log/rstwatch/resets.jsonl --events-file-max-size 100M
`

const serveAbout = `rstwatch serve: count every TCP reset in the kernel, always on, and serve the counts
to Prometheus. Stops cleanly on SIGTERM; reloads nothing. Needs root, or CAP_BPF,
CAP_PERFMON and CAP_DAC_READ_SEARCH (see deploy/systemd/rstwatch.service).`

// How often exited owners are forgotten between scrapes, so that the
// kernel map keeps room even when nobody scrapes.
const syncInterval = 10 * time.Second

type serveFlags struct {
	addr          string
	logFormat     string
	eventsFile    string
	eventsMax     int
	probeInterval time.Duration
	bpfStats      bool
	limits        metrics.Limits
	readyFile     string
}

func (s *serveFlags) register(fs *pflag.FlagSet) {
	s.addr = "127.0.0.1:9464"
	fs.Var(&value[string]{p: &s.addr, typ: "host:port", show: func(v string) string { return v }, parse: func(v string) (string, error) { return v, checkListenAddr(v) }},
		"metrics-addr", "serve /metrics and /healthz on `host:port` (loopback by default; give the pod or host IP for Prometheus)")
	choiceFlag(fs, &s.logFormat, "log-format", "", "text", []string{"text", "json"}, "log `format`: text or json (to stderr)")
	fs.StringVar(&s.eventsFile, "events-file", "", "also write every reset as a JSON line to this `file` (off by default: costs a ring buffer and a reader)")
	sizeFlag(fs, &s.eventsMax, "events-file-max-size", "100M", func(n int) error {
		if n < 4096 {
			return errors.New("want 4K or more")
		}
		return nil
	}, "rotate the events file past this `size`, keeping one .1 backup")
	fs.BoolVar(&s.bpfStats, "bpf-stats", false, "have the kernel account the BPF programs' run time while serve runs (needs CAP_SYS_ADMIN; off again on exit)")
	numberFlag(fs, &s.limits.OwnerComms, "max-owner-comms", metrics.DefaultOwnerComms, 1, math.MaxInt32, "want a number, 1 or more",
		"distinct owner_comm label values; more are folded into \"other\"")
	numberFlag(fs, &s.limits.ZKEndpoints, "max-zk-endpoints", metrics.DefaultZKEndpoints, 1, math.MaxInt32, "want a number, 1 or more",
		"distinct zk_endpoint label values; more are folded into \"other\"")
	numberFlag(fs, &s.limits.Series, "max-series", metrics.DefaultSeries, 1, math.MaxInt32, "want a number, 1 or more",
		"rstwatch_resets_total series; past it owner_comm and zk_endpoint become \"other\"")
	registerWorkloadLimits(fs, &s.limits)
	fs.StringVar(&s.readyFile, "ready-file", "", "create this `file` once the programs are attached and /metrics is served")
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		f traceFlags
		s serveFlags
	)
	c := newCommand("serve", serveAbout, serveExamples, stdout)
	s.register(c.FlagSet)
	f.register(c.FlagSet)
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
	s.probeInterval = f.zk.interval
	cfg.Aggregate, cfg.NoEvents = true, s.eventsFile == ""
	log := newLogger(stderr, f.debug, s.logFormat)

	// Setup, in the order an operator fixes things: privileges, BTF and
	// tracefs, the listening address (a busy port is the likeliest
	// mistake), the events file, then ZooKeeper (its ports go into the
	// kernel's aggregation key) and loading.
	if err := tracer.Preflight(); err != nil {
		return log.setupFailed(err, f.debug, stderr)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return log.setupFailed(fmt.Errorf("--metrics-addr %s: %w", s.addr, unwrapOp(err)), f.debug, stderr)
	}
	defer ln.Close()
	var events *output.RotatingFile
	if s.eventsFile != "" {
		events, err = output.OpenRotating(s.eventsFile, int64(s.eventsMax))
		if err != nil {
			return log.setupFailed(fmt.Errorf("--events-file: %w", err), f.debug, stderr)
		}
		defer events.Close()
	}
	var statsOn atomic.Bool
	if s.bpfStats {
		c, err := tracer.EnableStats()
		if err != nil {
			return log.setupFailed(fmt.Errorf("--bpf-stats: %w (it needs CAP_SYS_ADMIN; or set kernel.bpf_stats_enabled=1 yourself)", err), f.debug, stderr)
		}
		defer c.Close()
		statsOn.Store(true)
	}
	var rec *serveReconcile
	l, err := f.load(ctx, cfg, log, stderr, func(cfg *tracer.Config) { rec = newServeReconcile(ctx, cfg, s.limits) })
	if err != nil {
		return err
	}
	defer l.close()
	t, zs, ws := l.t, l.zs, l.ws
	rec.start()

	sv := &server{s: s, ln: ln, log: log.Logger, zk: zkOf(zs.zk), statsOn: &statsOn, wl: ws, rec: rec}
	if events == nil {
		// No events are streamed, but the ZooKeeper enricher still hears
		// of new connections to ZooKeeper ports (client libraries learned
		// while the clients live, sessions refreshed), and the packet-level
		// view's resets (--all-senders) are named and counted.
		rctx, stopReader := context.WithCancel(ctx)
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			if err := t.Run(rctx, tracer.Callbacks{Connect: zs.connected(), Event: rec.events(rctx)}); err != nil {
				log.Warn("reading the kernel's records failed", "error", err)
			}
		}()
		defer func() { stopReader(); <-readerDone }()
		return sv.run(ctx, t, nil)
	}
	// The events stream runs beside /metrics over the same tracer, which
	// outlives both: it is closed (deferred above) after they stopped.
	pctx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	p := &background{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		_, p.err = pipeline.Run(pctx, t, pipeline.Options{
			Sinks:    []output.Sink{output.NewJSON(events)},
			Enricher: rec.enricher(pipeline.Chain(ws.enricher(), zs.enricher)), Skip: zs.skip, Keep: ws.keep(), Log: log.Logger,
		})
	}()
	err = sv.run(ctx, t, p)
	stopEvents()
	<-p.done
	if p.err != nil && err == nil {
		err = fmt.Errorf("writing events: %w", p.err)
	}
	return err
}

// background is a goroutine's end and error.
type background struct {
	done chan struct{}
	err  error
}

// unwrapOp drops net.OpError's repetition of the address.
func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

type server struct {
	s       serveFlags
	ln      net.Listener
	log     *slog.Logger
	zk      metrics.ZK
	statsOn *atomic.Bool
	wl      *workloadSetup
	rec     *serveReconcile
}

// run serves /metrics over t until ctx ends (or the event pipeline stops),
// then stops serving before the caller closes t.
func (sv *server) run(ctx context.Context, t *tracer.Tracer, events *background) error {
	coll := metrics.NewCollector(t, metrics.Options{
		Limits: sv.s.limits, ZK: sv.zk, SelfPID: uint32(os.Getpid()), Log: sv.log,
		StatsEnabled: sv.statsOn.Load, Workload: sv.wl.ofCount,
	})
	var health metrics.Health
	reg := metrics.NewRegistry(coll)
	sv.rec.register(reg, coll)
	srv := &http.Server{
		Handler:           metrics.Handler(reg, &health),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(sv.log.Handler(), slog.LevelWarn),
	}
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	go coll.Run(bg, syncInterval)
	if p, ok := sv.zk.(interface {
		Run(context.Context, time.Duration)
	}); ok {
		go p.Run(bg, sv.s.probeInterval)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sv.ln) }()
	health.Set(true)
	sv.log.Info("serving metrics", "addr", sv.ln.Addr().String(), "events_file", sv.s.eventsFile,
		"zk", sv.zk != nil, "bpf_stats", sv.statsOn.Load())
	if sv.s.readyFile != "" {
		if err := os.WriteFile(sv.s.readyFile, []byte("ready\n"), 0o644); err != nil {
			sv.log.Warn("writing the ready file failed", "error", err)
		}
	}

	var err error
	select {
	case <-ctx.Done():
		sv.log.Info("stopping", "cause", context.Cause(ctx))
	case err = <-served:
		err = fmt.Errorf("serving metrics: %w", err)
	case <-eventsDone(events):
		err = fmt.Errorf("the event stream stopped: %v", events.err)
	}
	stopAt := time.Now()
	health.Set(false)
	stopBG()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		srv.Close()
	}
	coll.Detach()
	sv.log.Debug("stopped serving", "after", time.Since(stopAt))
	return err
}

func eventsDone(b *background) <-chan struct{} {
	if b == nil {
		return nil
	}
	return b.done
}

// zkOf keeps a nil *diagnose.Enricher from becoming a non-nil interface.
func zkOf(z *diagnose.Enricher) metrics.ZK {
	if z == nil {
		return nil
	}
	return z
}
