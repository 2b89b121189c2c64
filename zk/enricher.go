package zk

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
)

// EnricherConfig says which endpoints are ZooKeeper. Only these are ever
// probed: servers named with --zk, servers on a --zk-port that a reset
// touched, and servers found by Discover.
type EnricherConfig struct {
	Servers     []string // --zk host:port,…
	ClientPorts []uint16 // --zk-port P,…
	// AdminPort is the AdminServer port assumed on servers named by Servers
	// or ClientPorts, for words refused by the whitelist; 0 disables the
	// fallback for them (discovered servers use their own config).
	AdminPort      uint16
	Discovered     []Discovered
	Prober         *Prober         // nil: NewProber(ProberConfig{})
	ClientVersions *ClientVersions // nil: the real /proc
	// Resolve looks up --zk host names; nil uses the system resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// MaxLearned bounds endpoints learned from --zk-port resets and kept
	// fresh by Run; 256 when 0.
	MaxLearned int
}

// Enricher decides whether a reset touched ZooKeeper and fills ev.ZK and
// ev.Verdict. Safe for concurrent use.
type Enricher struct {
	prober   *Prober
	versions *ClientVersions
	ports    map[uint16]bool
	admin    uint16
	named    map[netip.AddrPort]Target // --zk, resolved
	local    []localServer             // discovered on this host
	members  map[netip.AddrPort]Target // discovered ensemble members
	maxLearn int

	mu      sync.Mutex
	learned map[netip.AddrPort]Target
}

type localServer struct {
	port   uint16
	addr   netip.Addr // unspecified: all interfaces
	target Target
}

// NewEnricher resolves the named servers and returns an Enricher.
func NewEnricher(ctx context.Context, cfg EnricherConfig) (*Enricher, error) {
	e := &Enricher{
		prober: cfg.Prober, versions: cfg.ClientVersions, admin: cfg.AdminPort,
		ports: map[uint16]bool{}, named: map[netip.AddrPort]Target{},
		members: map[netip.AddrPort]Target{}, learned: map[netip.AddrPort]Target{},
		maxLearn: cfg.MaxLearned,
	}
	if e.prober == nil {
		e.prober = NewProber(ProberConfig{})
	}
	if e.versions == nil {
		e.versions = &ClientVersions{}
	}
	if e.maxLearn <= 0 {
		e.maxLearn = 256
	}
	for _, p := range cfg.ClientPorts {
		e.ports[p] = true
	}
	resolve := cfg.Resolve
	if resolve == nil {
		resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	for _, s := range cfg.Servers {
		aps, err := resolveEndpoint(ctx, resolve, s)
		if err != nil {
			return nil, fmt.Errorf("--zk %s: %w", s, err)
		}
		for _, ap := range aps {
			e.named[ap] = e.targetFor(ap)
		}
	}
	for _, d := range cfg.Discovered {
		if d.Target.Client != "" && d.Config != nil {
			port, addr := uint16(0), netip.IPv4Unspecified()
			if ap, err := netip.ParseAddrPort(d.Target.Client); err == nil {
				port = ap.Port()
			}
			if a, err := netip.ParseAddr(d.Config.ClientPortAddress); err == nil && !a.IsUnspecified() {
				addr = a.Unmap()
			}
			e.local = append(e.local, localServer{port: port, addr: addr, target: d.Target})
		}
		for _, m := range d.Members {
			if ap, err := netip.ParseAddrPort(m); err == nil {
				e.members[unmap(ap)] = Target{Client: unmap(ap).String()}
			}
		}
	}
	return e, nil
}

func resolveEndpoint(ctx context.Context, resolve func(context.Context, string) ([]netip.Addr, error), s string) ([]netip.AddrPort, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("bad port %q", ps)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(port))}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	out := make([]netip.AddrPort, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, netip.AddrPortFrom(a.Unmap(), uint16(port)))
	}
	return out, nil
}

func (e *Enricher) targetFor(ap netip.AddrPort) Target {
	t := Target{Client: ap.String()}
	if e.admin != 0 {
		t.Admin = netip.AddrPortFrom(ap.Addr(), e.admin).String()
	}
	return t
}

// Prober is the Enricher's prober (for its connections and metrics).
func (e *Enricher) Prober() *Prober { return e.prober }

// IsOwnProbe reports whether ev is on one of rstwatch's own probe
// connections; the pipeline should drop such events rather than report them.
func (e *Enricher) IsOwnProbe(ev *event.Event) bool {
	return e.prober.Conns().Contains(ev.Local, ev.Remote)
}

// match finds the ZooKeeper server endpoint of ev: this host's side first
// (then this host is the server), then the remote side.
func (e *Enricher) match(ev *event.Event) (endpoint netip.AddrPort, role string, t Target, ok bool) {
	local, remote := unmap(ev.Local), unmap(ev.Remote)
	for _, ls := range e.local {
		if local.Port() == ls.port && (ls.addr.IsUnspecified() || ls.addr == local.Addr()) {
			return local, RoleServer, ls.target, true
		}
	}
	if t, ok := e.named[local]; ok {
		return local, RoleServer, t, true
	}
	if t, ok := e.named[remote]; ok {
		return remote, RoleClient, t, true
	}
	if t, ok := e.members[remote]; ok {
		return remote, RoleClient, t, true
	}
	if e.ports[local.Port()] {
		return local, RoleServer, e.targetFor(local), true
	}
	if e.ports[remote.Port()] {
		return remote, RoleClient, e.targetFor(remote), true
	}
	return netip.AddrPort{}, "", Target{}, false
}

// Enrich fills ev.ZK and ev.Verdict when ev touched a ZooKeeper endpoint
// and reports whether it did. On a cold cache it waits for one probe of the
// endpoint (shared with concurrent callers), at most ctx and the probe
// timeout; call it off the ring-buffer reading goroutine. Events on
// rstwatch's own probe connections are left alone.
func (e *Enricher) Enrich(ctx context.Context, ev *event.Event) bool {
	if ev == nil || e.IsOwnProbe(ev) {
		return false
	}
	ep, role, t, ok := e.match(ev)
	if !ok {
		return false
	}
	e.learn(ep, t)
	zk := &event.ZK{Endpoint: ep, Role: role}
	k := Knowledge{Role: role}
	info, _ := e.prober.Get(ctx, t)
	if info != nil {
		if info.Stats != nil {
			// The JSON contract gives major.minor.patch[-pre]; the build
			// suffix is kept only when the version cannot be parsed.
			zk.ServerVersion = info.Version
			if v, err := ParseVersion(info.Version); err == nil {
				zk.ServerVersion = v.Short()
			}
			zk.Mode = info.Mode
			k.ServerVersion = info.Version
			k.ServerVersionSource = info.VersionSource()
			k.ServerFingerprint = info.Fingerprint
			if info.Stats.VersionErr != "" {
				k.ServerVersion = "" // printed, but not a version
			}
		}
	}
	at := ev.Time
	if at.IsZero() {
		at = time.Now()
	}
	clientAddr := ev.Local
	if role == RoleServer {
		clientAddr = ev.Remote
	}
	zk.Session = e.prober.SessionBefore(t.Client, clientAddr, at)
	if role == RoleClient && ev.Owner != nil {
		if cv, err := e.versions.Resolve(int(ev.Owner.PID)); err == nil && cv.Known() {
			zk.ClientVersion = cv.Version
			if v, err := ParseVersion(cv.Version); err == nil {
				zk.ClientVersion = v.Short()
			}
			k.ClientVersion, k.ClientVersionSource, k.ClientVersionKnown = cv.Version, cv.Source+" of pid "+strconv.Itoa(int(ev.Owner.PID)), true
		}
	}
	v := Judge(ev, k)
	ev.ZK, ev.Verdict = zk, &v
	return true
}

// learn remembers endpoints found through --zk-port so Run keeps their
// client lists fresh (sessions "seen before the reset" need earlier probes).
func (e *Enricher) learn(ep netip.AddrPort, t Target) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.learned[ep]; !ok && len(e.learned) < e.maxLearn {
		e.learned[ep] = t
	}
}

// targets lists every endpoint to keep warm.
func (e *Enricher) targets() []Target {
	seen := map[string]bool{}
	var out []Target
	add := func(t Target) {
		if t.Client != "" && !seen[t.Client] {
			seen[t.Client] = true
			out = append(out, t)
		}
	}
	for _, t := range e.named {
		add(t)
	}
	for _, l := range e.local {
		add(l.target)
	}
	e.mu.Lock()
	for _, t := range e.learned {
		add(t)
	}
	e.mu.Unlock()
	return out
}

// Prefetch probes every named, discovered and learned endpoint (bounded by
// the prober's concurrency and rate limit) and waits for them.
func (e *Enricher) Prefetch(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range e.targets() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.prober.Refresh(ctx, t)
		}()
	}
	wg.Wait()
}

// Run prefetches every interval until ctx ends, keeping versions and client
// lists fresh.
func (e *Enricher) Run(ctx context.Context, every time.Duration) {
	e.Prefetch(ctx)
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			e.Prefetch(ctx)
		}
	}
}

// Servers lists what is known of each probed server (endpoint, version,
// mode, errors), for metrics.
func (e *Enricher) Servers() []ServerInfo { return e.prober.Infos() }

// ErrorCounts is failed probes per endpoint.
func (e *Enricher) ErrorCounts() map[string]uint64 { return e.prober.ErrorCounts() }
