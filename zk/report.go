package zk

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
)

// ReportEntry is one server in `rstwatch zk probe`.
type ReportEntry struct {
	Endpoint    string   `json:"endpoint"`
	Reachable   bool     `json:"reachable"`
	Version     string   `json:"version,omitempty"`
	Mode        string   `json:"mode,omitempty"`
	Connections int64    `json:"connections"`
	Allowed     []string `json:"allowed"`
	Refused     []string `json:"refused"`
	AdminURLs   []string `json:"admin_used,omitempty"` // AdminServer URLs read instead of refused words
	// Implies1702 is the version verdict: this server version alone implies
	// ZOOKEEPER-1702 for its clients of unknown version (server < 3.5).
	Implies1702 bool   `json:"implies_zookeeper_1702"`
	VersionNote string `json:"version_verdict"`
	Error       string `json:"error,omitempty"`
}

// Report is the outcome of probing a list of servers.
type Report struct {
	Servers []ReportEntry `json:"servers"`
}

// AnyUnreachable is the CLI's exit status: true makes it exit non-zero.
func (r *Report) AnyUnreachable() bool {
	for _, s := range r.Servers {
		if !s.Reachable {
			return true
		}
	}
	return false
}

// ReportOptions tune ProbeReport.
type ReportOptions struct {
	// AdminPort is tried for words the whitelist refuses; 0 uses
	// DefaultAdminPort, negative disables the fallback.
	AdminPort int
	Prober    *Prober // nil: a fresh one
}

// ProbeReport asks every safe word of each endpoint (host:port of the
// client port), concurrently within the prober's bound.
func ProbeReport(ctx context.Context, endpoints []string, opts ReportOptions) *Report {
	p := opts.Prober
	if p == nil {
		p = NewProber(ProberConfig{})
	}
	r := &Report{Servers: make([]ReportEntry, len(endpoints))}
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := Target{Client: ep}
			if opts.AdminPort >= 0 {
				port := opts.AdminPort
				if port == 0 {
					port = DefaultAdminPort
				}
				if host, _, err := net.SplitHostPort(ep); err == nil {
					t.Admin = net.JoinHostPort(host, strconv.Itoa(port))
				}
			}
			r.Servers[i] = reportEntry(p.ProbeAll(ctx, t))
		}()
	}
	wg.Wait()
	return r
}

func reportEntry(si *ServerInfo) ReportEntry {
	e := ReportEntry{
		Endpoint: si.Endpoint, Reachable: si.Reachable && si.Stats != nil,
		Version: si.Version, Mode: si.Mode, Connections: si.Connections,
		Allowed: nonNil(si.Allowed), Refused: nonNil(si.Refused), AdminURLs: si.AdminUsed,
		Error: si.Err,
	}
	e.Implies1702, e.VersionNote = versionVerdict(si)
	return e
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func versionVerdict(si *ServerInfo) (bool, string) {
	if si.Stats == nil {
		return false, "unknown (no version)"
	}
	v, err := ParseVersion(si.Version)
	if err != nil {
		if si.Fingerprint == "3.6+" {
			return false, "3.6+ by latency format: not ZOOKEEPER-1702 by server version"
		}
		return false, "unknown (unparsable version)"
	}
	if v.ServerImplies1702() {
		return true, fmt.Sprintf("%s < 3.5: clients of unknown version likely ZOOKEEPER-1702 (inferred)", v.Short())
	}
	return false, fmt.Sprintf("%s >= 3.5: not ZOOKEEPER-1702 by server version", v.Short())
}

// WriteJSON renders the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write probe report: %w", err)
	}
	return nil
}

// WriteText renders the report as an aligned table.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tREACHABLE\tVERSION\tMODE\tCONNS\tALLOWED\tREFUSED\tADMINSERVER\tZOOKEEPER-1702\tERROR")
	for _, s := range r.Servers {
		version := "-"
		if v, err := ParseVersion(s.Version); err == nil {
			version = v.Short()
		} else if s.Version != "" {
			version = clip(s.Version)
		}
		admin := "-"
		if len(s.AdminURLs) > 0 {
			// The URLs differ only by command; JSON has them all.
			base, _, _ := strings.Cut(s.AdminURLs[0], "/commands/")
			admin = fmt.Sprintf("%s/commands (%d)", base, len(s.AdminURLs))
		}
		implies := "no"
		if s.Implies1702 {
			implies = "inferred"
		} else if s.Version == "" {
			implies = "unknown"
		}
		fmt.Fprintf(tw, "%s\t%t\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
			s.Endpoint, s.Reachable, version, dash(s.Mode), s.Connections,
			dash(strings.Join(s.Allowed, ",")), dash(strings.Join(s.Refused, ",")),
			admin, implies, dash(oneLine(s.Error)))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write probe report: %w", err)
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
