package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/rstwatch/rstwatch/zk"
)

const serveExamples = `  sudo rstwatch serve                                    metrics on http://127.0.0.1:9464/metrics
  sudo rstwatch serve --zk-port 2181 --log-format json
  sudo rstwatch serve --metrics-addr 10.0.0.5:9464       listen where Prometheus can reach it
  sudo rstwatch serve --events-file /var/log/rstwatch/resets.jsonl --events-file-max-size 100M
`

// How often exited owners are forgotten between scrapes, so that the
// kernel map keeps room even when nobody scrapes.
const syncInterval = 10 * time.Second

type serveFlags struct {
	addr          string
	logFormat     string
	eventsFile    string
	eventsMax     string
	probeInterval time.Duration
	bpfStats      bool
	limits        metrics.Limits
	readyFile     string
}

func (s *serveFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.addr, "metrics-addr", "127.0.0.1:9464", "serve /metrics and /healthz on `host:port` (loopback by default; give the pod or host IP for Prometheus)")
	fs.StringVar(&s.logFormat, "log-format", "text", "log `format`: text or json (to stderr)")
	fs.StringVar(&s.eventsFile, "events-file", "", "also write every reset as a JSON line to this `file` (off by default: costs a ring buffer and a reader)")
	fs.StringVar(&s.eventsMax, "events-file-max-size", "100M", "rotate the events file past this `size`, keeping one .1 backup")
	fs.BoolVar(&s.bpfStats, "bpf-stats", false, "have the kernel account the BPF programs' run time while serve runs (needs CAP_SYS_ADMIN; off again on exit)")
	fs.IntVar(&s.limits.OwnerComms, "max-owner-comms", metrics.DefaultOwnerComms, "distinct owner_comm label values; more are folded into \"other\"")
	fs.IntVar(&s.limits.ZKEndpoints, "max-zk-endpoints", metrics.DefaultZKEndpoints, "distinct zk_endpoint label values; more are folded into \"other\"")
	fs.IntVar(&s.limits.Series, "max-series", metrics.DefaultSeries, "rstwatch_resets_total series; past it owner_comm and zk_endpoint become \"other\"")
	fs.StringVar(&s.readyFile, "ready-file", "", "create this `file` once the programs are attached and /metrics is served")
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		f traceFlags
		s serveFlags
	)
	fs := newFlags("serve", "rstwatch serve: count every TCP reset in the kernel, always on, and serve the counts\nto Prometheus. Stops cleanly on SIGTERM; reloads nothing. Needs root, or CAP_BPF,\nCAP_PERFMON and CAP_DAC_READ_SEARCH (see deploy/systemd/rstwatch.service).", serveExamples, stderr)
	s.register(fs)
	f.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{2, fmt.Errorf("serve takes no arguments, got %q", fs.Args())}
	}
	if s.logFormat != "text" && s.logFormat != "json" {
		return &exitError{2, fmt.Errorf("--log-format %q: want text or json", s.logFormat)}
	}
	if f.zk.interval <= 0 {
		return &exitError{2, fmt.Errorf("--zk-probe-interval must be positive")}
	}
	s.probeInterval = f.zk.interval
	maxSize, err := parseSize(s.eventsMax)
	if err != nil {
		return &exitError{2, fmt.Errorf("--events-file-max-size: %w", err)}
	}
	cfg, err := f.tracerConfig()
	if err != nil {
		return &exitError{2, err}
	}
	cfg.Aggregate, cfg.NoEvents = true, s.eventsFile == ""

	log := newLogger(stderr, f.debug, s.logFormat)
	zs, err := f.zk.setup(ctx, log)
	if err != nil {
		return &exitError{2, err}
	}
	cfg.ZKPorts = zs.ports
	// Listen before loading anything: a busy port is the likeliest mistake.
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return &exitError{1, fmt.Errorf("--metrics-addr: %w", err)}
	}
	defer ln.Close()

	var statsOn atomic.Bool
	if s.bpfStats {
		c, err := tracer.EnableStats()
		if err != nil {
			return &exitError{1, fmt.Errorf("--bpf-stats: %w (it needs CAP_SYS_ADMIN; or set kernel.bpf_stats_enabled=1 yourself)", err)}
		}
		defer c.Close()
		statsOn.Store(true)
	}

	sv := &server{s: s, ln: ln, log: log, zk: zkOf(zs.zk), statsOn: &statsOn}
	if s.eventsFile == "" {
		t, err := tracer.Open(withLogger(cfg, log))
		if err != nil {
			return setupFailure(err, f.debug, stderr)
		}
		defer func() {
			at := time.Now()
			t.Close()
			log.Debug("detached the programs", "took", time.Since(at))
		}()
		for _, d := range t.Degraded() {
			log.Warn("reduced attribution on this kernel", "detail", d)
		}
		return sv.run(ctx, t, nil)
	}

	ev, err := output.OpenRotating(s.eventsFile, int64(maxSize))
	if err != nil {
		return &exitError{1, err}
	}
	defer ev.Close()
	// The pipeline gets its own context: it closes the tracer when it
	// returns, which must wait until /metrics has stopped reading it.
	pctx, stopPipeline := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipeline()
	ready := make(chan *tracer.Tracer, 1)
	done := make(chan error, 1)
	go func() {
		_, err := pipeline.Run(pctx, pipeline.Options{
			Tracer: cfg, Sinks: []output.Sink{output.NewJSON(ev)},
			Enricher: zs.enricher, Skip: zs.skip, Log: log,
			Ready: func(t *tracer.Tracer) { ready <- t },
		})
		done <- err
	}()
	select {
	case t := <-ready:
		err := sv.run(ctx, t, done)
		stopPipeline()
		if perr := <-done; perr != nil && err == nil {
			err = fmt.Errorf("writing events: %w", perr)
		}
		return err
	case err := <-done:
		if err == nil {
			err = errors.New("the trace stopped before it started")
		}
		return setupFailure(err, f.debug, stderr)
	}
}

func withLogger(cfg tracer.Config, log *slog.Logger) tracer.Config {
	cfg.Logger = log
	return cfg
}

type server struct {
	s       serveFlags
	ln      net.Listener
	log     *slog.Logger
	zk      metrics.ZK
	statsOn *atomic.Bool
}

// run serves /metrics over t until ctx ends (or the event pipeline stops),
// then stops serving before the caller closes t.
func (sv *server) run(ctx context.Context, t *tracer.Tracer, pipelineDone <-chan error) error {
	coll := metrics.NewCollector(t, metrics.Options{
		Limits: sv.s.limits, ZK: sv.zk, SelfPID: uint32(os.Getpid()), Log: sv.log,
		StatsEnabled: sv.statsOn.Load,
	})
	var health metrics.Health
	srv := &http.Server{
		Handler:           metrics.Handler(metrics.NewRegistry(coll), &health),
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
	case perr := <-pipelineDone:
		err = fmt.Errorf("the event stream stopped: %v", perr)
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

// zkOf keeps a nil *zk.Enricher from becoming a non-nil interface.
func zkOf(z *zk.Enricher) metrics.ZK {
	if z == nil {
		return nil
	}
	return z
}
