package diagnose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/zk"
	"github.com/rstwatch/rstwatch/zk/hostscan"
	"github.com/rstwatch/rstwatch/zk/wire"
)

// EnricherConfig says which endpoints are ZooKeeper. Only these are ever
// probed: servers named with --zk, servers on a --zk-port that a reset or a
// new connection touched, and servers found by hostscan.Discover.
type EnricherConfig struct {
	Servers     []string // --zk host:port,…
	ClientPorts []uint16 // --zk-port P,…
	// AdminPort is the AdminServer port to read, for words the whitelist
	// refuses, on servers named by Servers or ClientPorts; 0: none. On a
	// server of this host it is used only when the process listening on
	// the client port also listens on it (discovered servers use their
	// own zoo.cfg).
	AdminPort uint16
	// NoAdmin: read no AdminServer at all (--zk-admin-port 0), not even a
	// discovered server's own.
	NoAdmin    bool
	Discovered []hostscan.Discovered
	Prober     *Prober           // nil: NewProber(ProberConfig{})
	Scanner    *hostscan.Scanner // nil: the real /proc
	// Resolve looks up --zk host names; nil uses the system resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// MaxLearned bounds endpoints learned from --zk-port resets and kept
	// fresh by Run; 256 when 0.
	MaxLearned int
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Log gets each probe connection at debug level; nil: none.
	Log *slog.Logger
}

// Enricher decides whether a reset touched ZooKeeper, gathers the facts
// (server version and session from the prober, the client's runtime and
// library from /proc, the other row of the same reset) and fills
// ev.ZK and ev.Verdict from Classify and Explain. Safe for concurrent use.
type Enricher struct {
	prober   *Prober
	scan     *hostscan.Scanner
	ports    map[uint16]bool
	admin    uint16
	named    map[netip.AddrPort]wire.Target // --zk, resolved
	local    []localServer                  // discovered on this host
	members  map[netip.AddrPort]wire.Target // discovered ensemble members
	maxLearn int
	now      func() time.Time

	mu      sync.Mutex
	learned map[netip.AddrPort]wire.Target
	admins  map[netip.AddrPort]adminCheck // --zk-admin-port on local servers

	clients *clients
}

type localServer struct {
	port   uint16
	addr   netip.Addr // unspecified: all interfaces
	pid    int
	target wire.Target
}

type adminCheck struct {
	admin string
	at    time.Time
}

// NewEnricher resolves the named servers and returns an Enricher.
func NewEnricher(ctx context.Context, cfg EnricherConfig) (*Enricher, error) {
	e := &Enricher{
		prober: cfg.Prober, scan: cfg.Scanner, admin: cfg.AdminPort, now: cfg.Now,
		ports: map[uint16]bool{}, named: map[netip.AddrPort]wire.Target{},
		members: map[netip.AddrPort]wire.Target{}, learned: map[netip.AddrPort]wire.Target{},
		admins: map[netip.AddrPort]adminCheck{}, maxLearn: cfg.MaxLearned,
	}
	if e.prober == nil {
		e.prober = NewProber(ProberConfig{})
	}
	if log := cfg.Log; log != nil {
		e.prober.Conns().Observe = func(local, remote netip.AddrPort) {
			log.Debug("ZooKeeper probe connection", "local", local.String(), "remote", remote.String())
		}
	}
	if e.scan == nil {
		e.scan = &hostscan.Scanner{}
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.maxLearn <= 0 {
		e.maxLearn = 256
	}
	e.clients = newClients(e.scan, e.now)
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
			e.named[ap] = wire.Target{Client: ap.String()}
		}
	}
	for _, d := range cfg.Discovered {
		if d.Client != "" && d.Config != nil {
			port, addr := uint16(0), netip.IPv4Unspecified()
			if ap, err := netip.ParseAddrPort(d.Client); err == nil {
				port = ap.Port()
			}
			if a, err := netip.ParseAddr(d.Config.ClientPortAddress); err == nil && !a.IsUnspecified() {
				addr = a.Unmap()
			}
			t := wire.Target{Client: d.Client, Admin: d.Admin}
			if cfg.NoAdmin {
				t.Admin = ""
			}
			e.local = append(e.local, localServer{port: port, addr: addr, pid: d.PID, target: t})
		}
		for _, m := range d.Members {
			if ap, err := netip.ParseAddrPort(m); err == nil {
				e.members[unmap(ap)] = wire.Target{Client: unmap(ap).String()}
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

// withAdmin completes a named or --zk-port target with the AdminServer of
// --zk-admin-port, where it belongs to the same server: on this host, the
// process listening on the client port must listen on the admin port too
// (checked at most once a minute per endpoint); elsewhere the operator
// named it.
func (e *Enricher) withAdmin(ap netip.AddrPort, t wire.Target) wire.Target {
	if e.admin == 0 || t.Admin != "" {
		return t
	}
	admin := netip.AddrPortFrom(ap.Addr(), e.admin).String()
	if !hostscan.IsLocalAddr(ap.Addr()) {
		t.Admin = admin
		return t
	}
	e.mu.Lock()
	c, ok := e.admins[ap]
	e.mu.Unlock()
	if !ok || e.now().Sub(c.at) > time.Minute {
		c = adminCheck{at: e.now()}
		// Used when it is the same process, or when that cannot be seen
		// (no privileges): the operator named the port.
		same, err := hostscan.SameListener(e.scan.ProcRoot, ap.Port(), e.admin)
		if same || errors.Is(err, hostscan.ErrListenerHidden) {
			c.admin = admin
		}
		e.mu.Lock()
		e.admins[ap] = c
		e.mu.Unlock()
	}
	t.Admin = c.admin
	return t
}

// Prober is the Enricher's prober (for its connections and metrics).
func (e *Enricher) Prober() *Prober { return e.prober }

// match finds the ZooKeeper server endpoint of a connection between local
// and remote: this host's side first (then this host is the server), then
// the remote side.
func (e *Enricher) match(local, remote netip.AddrPort) (endpoint netip.AddrPort, role string, t wire.Target, serverPID int, ok bool) {
	local, remote = unmap(local), unmap(remote)
	for _, ls := range e.local {
		if local.Port() == ls.port && (ls.addr.IsUnspecified() || ls.addr == local.Addr()) {
			return local, RoleServer, ls.target, ls.pid, true
		}
	}
	if t, ok := e.named[local]; ok {
		return local, RoleServer, e.withAdmin(local, t), 0, true
	}
	if t, ok := e.named[remote]; ok {
		return remote, RoleClient, e.withAdmin(remote, t), 0, true
	}
	if t, ok := e.members[remote]; ok {
		return remote, RoleClient, t, 0, true
	}
	if e.ports[local.Port()] {
		return local, RoleServer, e.withAdmin(local, wire.Target{Client: local.String()}), 0, true
	}
	if e.ports[remote.Port()] {
		return remote, RoleClient, e.withAdmin(remote, wire.Target{Client: remote.String()}), 0, true
	}
	return netip.AddrPort{}, "", wire.Target{}, 0, false
}

// Skip reports whether ev is on a connection of rstwatch's own (this
// instance's probes, or any rstwatch process on this host), which must
// never be reported as a finding. The pipeline drops such events.
func (e *Enricher) Skip(ev *event.Event) bool {
	if ev == nil {
		return false
	}
	if e.prober.Conns().Contains(ev.Local, ev.Remote) {
		return true
	}
	return e.clients.isRstwatch(ev)
}

// Enrich fills ev.ZK and ev.Verdict when ev touched a ZooKeeper endpoint
// and reports whether it did. On a cold cache it waits for one probe of the
// endpoint (shared with concurrent callers), at most ctx and the probe
// timeout; call it off the ring-buffer reading goroutine, in the order the
// events came. Events on rstwatch's own connections are left alone.
func (e *Enricher) Enrich(ctx context.Context, ev *event.Event) bool {
	if ev == nil || e.Skip(ev) {
		return false
	}
	ep, role, t, serverPID, ok := e.match(ev.Local, ev.Remote)
	if !ok {
		return false
	}
	e.learn(ep, t)
	at := ev.Time
	if at.IsZero() {
		at = e.now()
	}
	f := Facts{
		At: at, Direction: ev.Direction, Reason: ev.Reason, State: ev.State, StateKnown: true,
		Role: role, Local: unmap(ev.Local), Remote: unmap(ev.Remote), Endpoint: ep, Owner: ev.Owner,
	}
	// Wait for a first answer on a cold cache; what was said and when is
	// then read from the prober's memory.
	e.prober.Get(ctx, t)
	f.Server = e.prober.ServerFacts(t.Client)
	client, server := f.Local, f.Remote
	if role == RoleServer {
		client, server = f.Remote, f.Local
	}
	other, paired := e.clients.other(ev.Direction, f.Local, f.Remote, at, ev.TSOption)
	var conn *connRecord
	if role == RoleClient && ev.State == "SYN_SENT" || role == RoleServer && paired && other.state == "SYN_SENT" {
		// A new connection attempt on these ports: a connection the
		// kernel saw made on them before is an earlier one (the client's
		// port was reused) and lends this one nothing, not its client,
		// start or accept. Rows come in time order, so forgetting it
		// loses nothing the earlier connection's rows need.
		e.clients.forget(client, server, at)
	} else {
		conn = e.clients.conn(client, server)
	}
	if conn != nil {
		f.ConnMade, f.ConnAccepted = conn.made, conn.accepted
	}
	if paired && ev.Direction == event.Receive {
		f.Peer = &Peer{Local: f.Remote, Reason: other.reason, State: other.state, Owner: other.owner, Others: other.others}
	}
	var otherOwner *event.Owner
	if paired {
		otherOwner = other.owner
	}
	f.Client = e.clientFacts(ev, role, conn, otherOwner, serverPID)
	f.Session = e.prober.SessionBefore(t.Client, client, at)

	d := Classify(f)
	ev.ZK = zkOf(f, ep, role)
	ev.Verdict = &event.Verdict{Code: d.Code, Situation: string(d.Situation), Text: Explain(f, d)}
	if p := f.Peer; p != nil {
		ev.Verdict.Sender = &event.SendingRow{Local: p.Local, Reason: p.Reason, Owner: p.Owner}
	}
	e.clients.record(ev)
	return true
}

// clientFacts finds the client process: this host's socket owner when this
// host is the client; else the process that made the connection (seen by
// the kernel) or the owner of the other row of this reset, when the client
// is on this host too.
func (e *Enricher) clientFacts(ev *event.Event, role string, conn *connRecord, other *event.Owner, serverPID int) Client {
	var pid uint32
	var comm string
	var owner *event.Owner // the client's socket owner row, when this host traced one
	switch {
	case role == RoleClient && ev.Owner != nil && ev.Owner.Source != event.OwnerListener:
		pid, comm, owner = ev.Owner.PID, ev.Owner.Comm, ev.Owner
	case role == RoleServer && conn != nil && conn.clientPID != 0:
		pid, comm = conn.clientPID, conn.clientComm
		if other != nil && other.PID == pid {
			owner = other
		}
	case role == RoleServer && other != nil && other.Source != event.OwnerListener:
		pid, comm, owner = other.PID, other.Comm, other
	}
	if pid == 0 || int(pid) == serverPID {
		return Client{}
	}
	c := e.clients.process(pid, comm)
	if owner != nil {
		c.Workload = owner.Workload
	}
	return c
}

// zkOf is the zk object of the output.
func zkOf(f Facts, ep netip.AddrPort, role string) *event.ZK {
	z := &event.ZK{Endpoint: ep, Role: role, Session: f.Session.ID, Mode: f.Server.Mode}
	if f.Server.Version != "" {
		z.ServerVersion = short(f.Server.Version)
		z.ServerVersionAt = f.Server.At
	}
	if c := f.Client; c.PID != 0 {
		z.ClientPID, z.ClientRuntime, z.ClientLibrary = c.PID, c.Runtime, c.Library
		if v, err := zk.ParseVersion(c.Version); err == nil && c.Library == hostscan.JavaClient {
			z.ClientVersion = v.Short()
		} else {
			z.ClientVersion = c.Version
		}
	}
	return z
}

// Count is one of serve's in-kernel counts, as the metrics see it.
type Count struct {
	Direction   event.Direction
	Reason      string
	State       string // TCP state of this host's socket, "" when there was none
	OwnerPID    uint32 // 0 when no owner was known
	OwnerComm   string
	OwnerSource event.OwnerSource
	Endpoint    netip.AddrPort // the ZooKeeper server endpoint
}

// CountVerdict is the verdict code of one of serve's counts, from Classify
// like trace's: the count keeps the TCP state but no 4-tuple, so the client
// is known only when it is this count's owner.
func (e *Enricher) CountVerdict(ctx context.Context, c Count) string {
	if e.IsRstwatch(c.OwnerPID, c.OwnerComm) {
		return event.VerdictUnknown
	}
	ep := unmap(c.Endpoint)
	f := Facts{At: e.now(), Direction: c.Direction, Reason: c.Reason, State: c.State, StateKnown: true, Endpoint: ep}
	if c.OwnerPID != 0 {
		f.Owner = &event.Owner{PID: c.OwnerPID, Comm: c.OwnerComm, Alive: true, Source: c.OwnerSource}
	}
	// Which side of the connection the owner is: the count keeps only the
	// endpoint. The server's side is its listener's owner, a server process
	// found on this host, or no owner at all (a refused connect to it).
	_, _, t, serverPID, ok := e.match(ep, netip.AddrPort{})
	if !ok {
		_, _, t, serverPID, _ = e.match(netip.AddrPort{}, ep)
	}
	f.Role = RoleClient
	switch {
	case f.Owner == nil, c.OwnerSource == event.OwnerListener, serverPID != 0 && int(c.OwnerPID) == serverPID:
		f.Role = RoleServer
	}
	e.prober.Get(ctx, t)
	f.Server = e.prober.ServerFacts(t.Client)
	if f.Role == RoleClient {
		f.Client = e.clients.process(c.OwnerPID, c.OwnerComm)
	}
	return Classify(f).Code
}

// IsRstwatch reports whether pid is an rstwatch process (or was, when it
// has exited: then by its name, comm).
func (e *Enricher) IsRstwatch(pid uint32, comm string) bool {
	return pid != 0 && e.clients.rstwatchPID(pid, comm)
}

// learn remembers endpoints found through --zk-port so Run keeps their
// client lists fresh (sessions "seen before the reset" need earlier probes).
func (e *Enricher) learn(ep netip.AddrPort, t wire.Target) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.learned[ep]; !ok && len(e.learned) < e.maxLearn {
		e.learned[ep] = t
	}
}

// targets lists every endpoint to keep warm.
func (e *Enricher) targets() []wire.Target {
	seen := map[string]bool{}
	var out []wire.Target
	add := func(t wire.Target) {
		if t.Client != "" && !seen[t.Client] {
			seen[t.Client] = true
			out = append(out, t)
		}
	}
	for ap, t := range e.named {
		add(e.withAdmin(ap, t))
	}
	for _, l := range e.local {
		add(l.target)
	}
	e.mu.Lock()
	learned := make([]wire.Target, 0, len(e.learned))
	for _, t := range e.learned {
		learned = append(learned, t)
	}
	e.mu.Unlock()
	for _, t := range learned {
		add(t)
	}
	slices.SortFunc(out, func(a, b wire.Target) int {
		if a.Client < b.Client {
			return -1
		}
		if a.Client > b.Client {
			return 1
		}
		return 0
	})
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

// Run learns about new connections (see Connected) and prefetches every
// interval until ctx ends, keeping versions and client lists fresh.
func (e *Enricher) Run(ctx context.Context, every time.Duration) {
	e.Start(ctx)
	e.Prefetch(ctx)
	e.learnLocalClients()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			e.Prefetch(ctx)
			e.learnLocalClients()
		}
	}
}

// Servers lists what is known of each probed server (endpoint, version,
// mode, errors), for metrics.
func (e *Enricher) Servers() []wire.ServerInfo { return e.prober.Infos() }

// ErrorCounts is failed probes per endpoint.
func (e *Enricher) ErrorCounts() map[string]uint64 { return e.prober.ErrorCounts() }
