package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/rstwatch/rstwatch/zk/hostscan"
	"github.com/rstwatch/rstwatch/zk/wire"
)

// ReportEntry is one server in `rstwatch zk probe`.
type ReportEntry struct {
	Endpoint string `json:"endpoint"`
	// Reachable: a TCP connection to the endpoint was accepted.
	Reachable bool `json:"reachable"`
	// ZooKeeper: it answered as a ZooKeeper server does (a version, a
	// whitelist refusal, "not currently serving requests").
	ZooKeeper   bool     `json:"zookeeper"`
	Version     string   `json:"version,omitempty"` // as the server printed it
	Mode        string   `json:"mode,omitempty"`
	Connections int64    `json:"connections"`
	Allowed     []string `json:"allowed"`
	Refused     []string `json:"refused"`
	// Admin is the AdminServer read for refused words, "" when none;
	// AdminNote says why none was used when one was asked for or found.
	Admin     string   `json:"admin,omitempty"`
	AdminNote string   `json:"admin_note,omitempty"`
	AdminURLs []string `json:"admin_used,omitempty"`
	// Verdict is what Classify says of a reset on an established
	// connection to this server from a client whose library is unknown:
	// the operator's rule on the server version.
	Verdict     string `json:"zookeeper_1702"`
	VerdictText string `json:"verdict"`
	Error       string `json:"error,omitempty"`
}

// Report is the outcome of probing a list of servers.
type Report struct {
	Servers []ReportEntry `json:"servers"`
}

// AnyUnusable is the CLI's exit status: true when a server could not be
// reached or is not a ZooKeeper server.
func (r *Report) AnyUnusable() bool {
	for _, s := range r.Servers {
		if !s.Reachable || !s.ZooKeeper {
			return true
		}
	}
	return false
}

// ReportOptions tune ProbeReport.
type ReportOptions struct {
	// AdminPort is the AdminServer port to read for words the whitelist
	// refuses; 0: none. On this host it is used only when the process
	// listening on the client port listens on it too.
	AdminPort uint16
	// NoAdmin: read no AdminServer at all (--zk-admin-port 0).
	NoAdmin bool
	// Discovered are ZooKeeper servers of this host: a local endpoint's
	// own AdminServer (from its zoo.cfg) is used when no port is given.
	Discovered []hostscan.Discovered
	ProcRoot   string       // "" is /proc
	Client     *wire.Client // nil: defaults
}

// ProbeReport asks every safe word of each endpoint (host:port of the
// client port), concurrently.
func ProbeReport(ctx context.Context, endpoints []string, opts ReportOptions) *Report {
	p := NewProber(ProberConfig{Client: opts.Client})
	r := &Report{Servers: make([]ReportEntry, len(endpoints))}
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := wire.Target{Client: ep}
			var note string
			t.Admin, note = adminFor(ep, opts)
			e := reportEntry(p.ProbeAll(ctx, t))
			if e.Admin == "" {
				e.AdminNote = note
			}
			r.Servers[i] = e
		}()
	}
	wg.Wait()
	return r
}

// adminFor picks the AdminServer of endpoint: one that belongs to the same
// server, or none (with why).
func adminFor(endpoint string, o ReportOptions) (admin, note string) {
	if o.NoAdmin {
		return "", ""
	}
	host, ps, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", ""
	}
	port, _ := strconv.ParseUint(ps, 10, 16)
	local := false
	if a, err := netip.ParseAddr(host); err == nil {
		local = hostscan.IsLocalAddr(a)
	} else if host == "localhost" {
		local = true
	}
	if !local {
		if o.AdminPort == 0 {
			return "", ""
		}
		return net.JoinHostPort(host, strconv.Itoa(int(o.AdminPort))), "" // named by the operator
	}
	explicit := net.JoinHostPort(host, strconv.Itoa(int(o.AdminPort)))
	if o.AdminPort != 0 {
		same, err := hostscan.SameListener(o.ProcRoot, uint16(port), o.AdminPort)
		switch {
		case same, errors.Is(err, hostscan.ErrListenerHidden):
			// The same process, or not visible: the operator named it.
			return explicit, ""
		case err != nil:
			return "", fmt.Sprintf("--zk-admin-port %d not used: it is not this server's AdminServer (%v)", o.AdminPort, err)
		}
		return "", fmt.Sprintf("--zk-admin-port %d not used: it is not this server's AdminServer", o.AdminPort)
	}
	// Not given: the AdminServer of the server found on this host that
	// listens on this client port, from its own zoo.cfg.
	owners, _ := hostscan.ListenerPIDs(o.ProcRoot, uint16(port))
	for _, d := range o.Discovered {
		for _, c := range owners {
			if d.PID == c && d.Admin != "" {
				_, aport, _ := net.SplitHostPort(d.Admin)
				return net.JoinHostPort(host, aport), ""
			}
		}
	}
	return "", ""
}

func reportEntry(si *wire.ServerInfo) ReportEntry {
	e := ReportEntry{
		Endpoint: si.Endpoint, Reachable: si.Reachable, ZooKeeper: si.ZooKeeper(),
		Version: si.Version, Mode: si.Mode, Connections: si.Connections,
		Allowed: nonNil(si.Allowed), Refused: nonNil(si.Refused), AdminURLs: si.AdminUsed,
		Error: si.Err,
	}
	if len(si.AdminUsed) > 0 {
		e.Admin = si.Admin
	}
	s := Server{Fingerprint: si.Fingerprint, At: si.ProbedAt, Source: si.StatsSource}
	if si.Stats != nil && si.Stats.VersionErr == "" {
		s.Version = si.Version
	}
	d := ServerVerdict(s)
	e.Verdict = d.Code
	e.VerdictText = serverVerdictText(d)
	switch {
	case e.ZooKeeper || !e.Reachable:
	case errors.Is(si.Cause, wire.ErrNoReply):
		e.Error = "reachable, but no answer (a hung server, or not a ZooKeeper server): " + si.Err
	default:
		e.Error = "reachable, not a ZooKeeper server: " + si.Err
	}
	return e
}

// serverVerdictText is the short form of the rule for the probe report.
func serverVerdictText(d Diagnosis) string {
	switch d.Rule {
	case RuleServerOld:
		return fmt.Sprintf("%s < 3.5.0: resets of clients of unknown library are ZOOKEEPER-1702 by the operator's rule (inferred)", d.ServerVersion.Short())
	case RuleServerNew:
		return fmt.Sprintf("%s >= 3.5.0: not ZOOKEEPER-1702 by the operator's rule", d.ServerVersion.Short())
	case RuleServerFingerprint:
		return "3.6+ by reply format: not ZOOKEEPER-1702 by the operator's rule"
	}
	return "unknown (no version)"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ErrNotEndpoint: a zk probe argument is not host:port.
var ErrNotEndpoint = errors.New("want host:port with a port from 1 to 65535")

// CheckEndpoint says whether s can be probed: host:port, port 1–65535.
func CheckEndpoint(s string) error {
	host, ps, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q: %w", s, ErrNotEndpoint)
	}
	if p, err := strconv.ParseUint(ps, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q: %w", s, ErrNotEndpoint)
	}
	return nil
}

// ShortVersion is "3.8.0" for a version line, or the line itself when it
// does not parse.
func ShortVersion(v string) string { return short(v) }
