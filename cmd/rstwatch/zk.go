package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/pipeline"
	"github.com/rstwatch/rstwatch/zk/diagnose"
	"github.com/rstwatch/rstwatch/zk/hostscan"
	"github.com/rstwatch/rstwatch/zk/wire"
)

// zkFlags select the ZooKeeper endpoints whose resets are explained. Only
// what they name, and servers discovered on this host, is ever probed.
type zkFlags struct {
	servers   []string
	ports     []string
	adminPort uint16
	interval  time.Duration
	discover  bool
	fs        *pflag.FlagSet // to tell --zk-admin-port 0 from the default
}

// noAdmin: --zk-admin-port 0 given, which means no AdminServer at all,
// not even a local server's own (in trace, serve and zk probe alike).
func noAdmin(fs *pflag.FlagSet, port uint16) bool {
	return fs != nil && port == 0 && (fs.Changed("zk-admin-port") || fs.Changed("admin-port"))
}

const adminPortUsage = "AdminServer `port` to read when a four-letter word is not whitelisted (ZooKeeper 3.5+, often 8080); on this host only when the server's own process listens on it. Without it a server found on this host is read through its own (zoo.cfg); 0: no AdminServer at all"

func (z *zkFlags) register(fs *pflag.FlagSet) {
	z.fs = fs
	fs.StringSliceVar(&z.servers, "zk", nil, "ZooKeeper servers to probe and explain resets with, as `host:port` of the client port (repeatable or comma list)")
	fs.StringSliceVar(&z.ports, "zk-port", nil, "ZooKeeper client `port`s: a reset whose local or remote port is one of them is ZooKeeper traffic, and that server is probed (e.g. 2181)")
	fs.Uint16Var(&z.adminPort, "zk-admin-port", 0, adminPortUsage)
	fs.DurationVar(&z.interval, "zk-probe-interval", 10*time.Second, "how often known ZooKeeper servers are probed again (versions, modes, sessions)")
	fs.BoolVar(&z.discover, "zk-discover", true, "find ZooKeeper servers running on this host (QuorumPeerMain/ZooKeeperServerMain) and read their zoo.cfg")
}

// zkSetup is what the trace and serve commands need from the flags.
type zkSetup struct {
	zk       *diagnose.Enricher // nil when no ZooKeeper endpoint is named or found
	enricher pipeline.Enricher
	// skip drops resets on rstwatch's own connections: this instance's
	// probes, and those of any other rstwatch process on this host.
	skip  func(*event.Event) bool
	ports []uint16 // every ZooKeeper client port known, for the kernel's aggregation key and connect notices
}

// zkEnricher adapts *diagnose.Enricher to pipeline.Enricher,
// pipeline.Previewer and pipeline.ConnectObserver.
type zkEnricher struct{ e *diagnose.Enricher }

func (z zkEnricher) Enrich(ctx context.Context, ev *event.Event) { z.e.Enrich(ctx, ev) }

func (z zkEnricher) Connected(c *event.Connect) { z.e.Connected(c) }

func (z zkEnricher) Preview(batch []*event.Event) { z.e.Preview(batch) }

// clientPorts lists the client ports the flags name; check (trace.go) has
// already turned their mistakes into usage errors.
func (z *zkFlags) clientPorts() ([]uint16, error) {
	ports, err := parsePorts(z.ports)
	if err != nil {
		return nil, fmt.Errorf("--zk-port: %w", err)
	}
	for _, srv := range z.servers {
		p, err := portOf(srv)
		if err != nil {
			return nil, fmt.Errorf("--zk %q: %w", srv, err)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

func (z *zkFlags) setup(ctx context.Context, log *slog.Logger) (zkSetup, error) {
	var s zkSetup
	ports, err := z.clientPorts()
	if err != nil {
		return s, err
	}
	var found []hostscan.Discovered
	if z.discover {
		found, err = hostscan.Discover(hostscan.DefaultProcRoot)
		if err != nil {
			log.Warn("ZooKeeper discovery failed", "error", err)
		}
		for _, d := range found {
			log.Info("found a ZooKeeper server on this host", "pid", d.PID, "config", d.ConfigPath, "client", d.Client, "admin", d.Admin)
			if p, err := portOf(d.Client); err == nil {
				ports = append(ports, p)
			}
		}
	}
	// Resets on any rstwatch process's connections are never findings,
	// ZooKeeper endpoints or not.
	scan := &hostscan.Scanner{}
	// The prober's per-endpoint rate limit must not be longer than the
	// refresh interval asked for, or refreshes would be refused.
	minInterval := min(z.interval, 5*time.Second)
	e, err := diagnose.NewEnricher(ctx, diagnose.EnricherConfig{
		Servers:     z.servers,
		ClientPorts: ports,
		AdminPort:   z.adminPort,
		NoAdmin:     noAdmin(z.fs, z.adminPort),
		Discovered:  found,
		Prober:      diagnose.NewProber(diagnose.ProberConfig{MinInterval: minInterval}),
		Scanner:     scan,
		Log:         log,
	})
	if err != nil {
		return s, err
	}
	s.skip = e.Skip
	if len(z.servers) == 0 && len(z.ports) == 0 && len(found) == 0 {
		return s, nil // nothing ZooKeeper to explain; the skip stays
	}
	s.zk, s.enricher, s.ports = e, zkEnricher{e}, ports
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

// connected is the tracer's Connect callback, nil when there is no
// ZooKeeper enrichment.
func (s zkSetup) connected() func(*event.Connect) {
	if s.zk == nil {
		return nil
	}
	return s.zk.Connected
}

const zkProbeExamples = `  rstwatch zk probe 127.0.0.1:2181
  rstwatch zk probe --output json zk1:2181 zk2:2181 zk3:2181
  rstwatch zk probe --zk-admin-port 8080 zk1:2181   read refused words from that server's AdminServer
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
		adminPort uint16
		timeout   time.Duration
	)
	fs := newFlags("zk probe", "rstwatch zk probe: ask ZooKeeper servers, with read-only four-letter words (exactly four bytes,\nno newline), their version, mode and connections, which words they allow, and whether their version\nalone implies ZOOKEEPER-1702. Exit status 1 if any endpoint is unreachable or not a ZooKeeper server.\nNeeds no privileges.", zkProbeExamples, stdout)
	fs.StringVarP(&format, "output", "o", "table", "output `format`: table or json")
	fs.Uint16Var(&adminPort, "zk-admin-port", 0, adminPortUsage)
	fs.Uint16Var(&adminPort, "admin-port", 0, "same as --zk-admin-port")
	fs.MarkHidden("admin-port")
	fs.DurationVar(&timeout, "timeout", wire.DefaultTimeout, "give up on one exchange (connect, word, reply) after this long")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &exitError{2, fmt.Errorf("zk probe: name at least one host:port")}
	}
	for _, ep := range fs.Args() {
		if err := diagnose.CheckEndpoint(ep); err != nil {
			return &exitError{2, fmt.Errorf("zk probe: %w", err)}
		}
	}
	if format != "table" && format != "json" {
		return &exitError{2, fmt.Errorf("--output %q: want table or json", format)}
	}
	if timeout <= 0 {
		return &exitError{2, fmt.Errorf("--timeout must be positive")}
	}
	opts := diagnose.ReportOptions{AdminPort: adminPort, NoAdmin: noAdmin(fs, adminPort), Client: &wire.Client{Timeout: timeout}}
	if anyLocal(fs.Args()) {
		// A local server's own AdminServer comes from its zoo.cfg.
		opts.Discovered, _ = hostscan.Discover(hostscan.DefaultProcRoot)
	}
	// Each server stops at its first network failure; a slow one that
	// answers every word is bounded by this.
	ctx, cancel := context.WithTimeout(ctx, 10*timeout)
	defer cancel()
	r := diagnose.ProbeReport(ctx, fs.Args(), opts)
	var err error
	if format == "json" {
		err = writeReportJSON(stdout, r)
	} else {
		err = writeReportText(stdout, r)
	}
	if err != nil {
		return err
	}
	bad := 0
	for _, s := range r.Servers {
		if !s.Reachable || !s.ZooKeeper {
			bad++
		}
	}
	if bad > 0 {
		return &exitError{1, fmt.Errorf("%d of %d endpoints unreachable or not ZooKeeper servers", bad, len(r.Servers))}
	}
	return nil
}

func anyLocal(endpoints []string) bool {
	for _, ep := range endpoints {
		host, _, _ := net.SplitHostPort(ep)
		if a, err := netip.ParseAddr(host); err == nil && hostscan.IsLocalAddr(a) || host == "localhost" {
			return true
		}
	}
	return false
}

// writeReportJSON renders the report as indented JSON.
func writeReportJSON(w io.Writer, r *diagnose.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write probe report: %w", err)
	}
	return nil
}

// writeReportText renders the report as an aligned table, notes below.
func writeReportText(w io.Writer, r *diagnose.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tREACHABLE\tZOOKEEPER\tVERSION\tMODE\tCONNS\tALLOWED\tREFUSED\tADMINSERVER\tZOOKEEPER-1702\tERROR")
	var notes []string
	for _, s := range r.Servers {
		version := "-"
		if s.Version != "" {
			version = clip(diagnose.ShortVersion(s.Version))
		}
		admin := "-"
		if s.Admin != "" {
			admin = fmt.Sprintf("%s (%d words)", s.Admin, len(s.AdminURLs))
		}
		if s.AdminNote != "" {
			notes = append(notes, s.Endpoint+": "+s.AdminNote)
		}
		implies := "unknown"
		switch s.Verdict {
		case event.VerdictKnownBug:
			implies = "inferred"
		case event.VerdictNotKnownBug:
			implies = "no"
		}
		fmt.Fprintf(tw, "%s\t%t\t%t\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
			s.Endpoint, s.Reachable, s.ZooKeeper, version, dash(s.Mode), s.Connections,
			dash(strings.Join(s.Allowed, ",")), dash(strings.Join(s.Refused, ",")),
			admin, implies, dash(oneLine(s.Error)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write probe report: %w", err)
	}
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, "note: "+n); err != nil {
			return fmt.Errorf("write probe report: %w", err)
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
