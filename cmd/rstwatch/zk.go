package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/pflag"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/pipeline"
	"github.com/rstwatch/rstwatch/zk"
)

// zkFlags select the ZooKeeper endpoints whose resets are explained. Only
// what they name, and servers discovered on this host, is ever probed.
type zkFlags struct {
	servers   []string
	ports     []string
	adminPort uint16
	interval  time.Duration
	discover  bool
}

func (z *zkFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&z.servers, "zk", nil, "ZooKeeper servers to probe and explain resets with, as `host:port` of the client port (repeatable or comma list)")
	fs.StringSliceVar(&z.ports, "zk-port", nil, "ZooKeeper client `port`s: a reset whose local or remote port is one of them is ZooKeeper traffic, and that server is probed (e.g. 2181)")
	fs.Uint16Var(&z.adminPort, "zk-admin-port", 0, "AdminServer `port` to fall back to when a four-letter word is not whitelisted (ZooKeeper 3.5+, usually 8080); 0: no fallback for --zk/--zk-port servers")
	fs.DurationVar(&z.interval, "zk-probe-interval", 10*time.Second, "how often known ZooKeeper servers are probed again (versions, modes, sessions)")
	fs.BoolVar(&z.discover, "zk-discover", true, "find ZooKeeper servers running on this host (QuorumPeerMain/ZooKeeperServerMain) and read their zoo.cfg")
}

// zkSetup is what the trace and serve commands need from the flags.
type zkSetup struct {
	zk       *zk.Enricher // nil when no ZooKeeper endpoint is named or found
	enricher pipeline.Enricher
	skip     func(*event.Event) bool
	ports    []uint16 // every ZooKeeper client port known, for the kernel's aggregation key
}

// zkEnricher adapts *zk.Enricher to pipeline.Enricher.
type zkEnricher struct{ e *zk.Enricher }

func (z zkEnricher) Enrich(ctx context.Context, ev *event.Event) { z.e.Enrich(ctx, ev) }

func (z *zkFlags) setup(ctx context.Context, log *slog.Logger) (zkSetup, error) {
	var s zkSetup
	ports, err := parsePorts(z.ports)
	if err != nil {
		return s, fmt.Errorf("--zk-port: %w", err)
	}
	for _, srv := range z.servers {
		p, err := portOf(srv)
		if err != nil {
			return s, fmt.Errorf("--zk %q: %w", srv, err)
		}
		ports = append(ports, p)
	}
	var found []zk.Discovered
	if z.discover {
		found, err = zk.Discover(zk.DefaultProcRoot)
		if err != nil {
			log.Warn("ZooKeeper discovery failed", "error", err)
		}
		for _, d := range found {
			log.Info("found a ZooKeeper server on this host", "pid", d.PID, "config", d.ConfigPath, "client", d.Target.Client)
			if p, err := portOf(d.Target.Client); err == nil {
				ports = append(ports, p)
			}
		}
	}
	if len(z.servers) == 0 && len(z.ports) == 0 && len(found) == 0 {
		return s, nil
	}
	// The prober's per-endpoint rate limit must not be longer than the
	// refresh interval asked for, or refreshes would be refused.
	minInterval := min(z.interval, 5*time.Second)
	e, err := zk.NewEnricher(ctx, zk.EnricherConfig{
		Servers:     z.servers,
		ClientPorts: ports,
		AdminPort:   z.adminPort,
		Discovered:  found,
		Prober:      zk.NewProber(zk.ProberConfig{MinInterval: minInterval}),
	})
	if err != nil {
		return s, err
	}
	s.zk, s.enricher, s.skip, s.ports = e, zkEnricher{e}, e.IsOwnProbe, ports
	return s, nil
}

// portOf returns the port of a host:port.
func portOf(hostPort string) (uint16, error) {
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		return 0, fmt.Errorf("want host:port: %w", err)
	}
	ports, err := parsePorts([]string{p})
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// start keeps the ZooKeeper knowledge fresh until ctx ends.
func (s zkSetup) start(ctx context.Context, every time.Duration) {
	if s.zk != nil {
		go s.zk.Run(ctx, every)
	}
}

const zkProbeExamples = `  rstwatch zk probe 127.0.0.1:2181
  rstwatch zk probe --output json zk1:2181 zk2:2181 zk3:2181
  rstwatch zk probe --admin-port 8080 zk1:2181   fall back to the AdminServer for refused words
`

const zkAbout = `rstwatch zk: ZooKeeper tools that need no privileges.

Subcommands:
  rstwatch zk probe [flags] host:port…   ask ZooKeeper servers their version, mode and
                                         connections with read-only four-letter words

Run 'rstwatch zk probe --help' for its flags.
`

// runZK dispatches the zk subcommands.
func runZK(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	switch {
	case len(args) == 0:
		return usageError("zk needs a subcommand: probe; 'rstwatch zk --help' says more")
	case args[0] == "--help" || args[0] == "-h" || args[0] == "help":
		fmt.Fprint(stdout, zkAbout)
		return nil
	case args[0] != "probe":
		return usageError("zk %s: no such subcommand; the only one is probe ('rstwatch zk --help')", quoteIfOdd(args[0]))
	}
	var (
		format    string
		adminPort int
		timeout   time.Duration
	)
	fs := newFlags("zk probe", "rstwatch zk probe: ask ZooKeeper servers, with read-only four-letter words (exactly four bytes,\nno newline), their version, mode and connections, which words they allow, and whether their version\nalone implies ZOOKEEPER-1702. Exit status 1 if any server is unreachable. Needs no privileges.", zkProbeExamples, stdout)
	fs.StringVarP(&format, "output", "o", "table", "output `format`: table or json")
	fs.IntVar(&adminPort, "admin-port", 0, "AdminServer `port` for words the whitelist refuses (0: 8080, negative: no fallback)")
	fs.DurationVar(&timeout, "timeout", 10*time.Second, "give up on the whole probe after this long")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &exitError{2, fmt.Errorf("zk probe: name at least one host:port")}
	}
	if format != "table" && format != "json" {
		return &exitError{2, fmt.Errorf("--output %q: want table or json", format)}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := zk.ProbeReport(ctx, fs.Args(), zk.ReportOptions{AdminPort: adminPort})
	var err error
	if format == "json" {
		err = r.WriteJSON(stdout)
	} else {
		err = r.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if r.AnyUnreachable() {
		return &exitError{1, fmt.Errorf("some ZooKeeper servers were unreachable")}
	}
	return nil
}
