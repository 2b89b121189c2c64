package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/rstwatch/rstwatch/zk/wire"
)

// ProberConfig tunes a Prober; zero fields get defaults.
type ProberConfig struct {
	TTL         time.Duration // cache lifetime of a good answer; 60 s
	ErrTTL      time.Duration // cache lifetime of a failure; 10 s
	MinInterval time.Duration // per endpoint, between two probes; 5 s
	Concurrency int           // probes in flight at once; 4
	// SessionRetention is how long a client address → session mapping seen
	// in cons is remembered after it was last seen; 10 min.
	SessionRetention time.Duration
	Client           *wire.Client      // nil: defaults
	Admin            *wire.AdminClient // nil: defaults
	Conns            *wire.ProbeConns  // nil: a new set (see Prober.Conns)
	Now              func() time.Time
}

// Prober probes ZooKeeper servers with caching, bounded concurrency,
// per-endpoint rate limiting and one shared probe per endpoint at a time.
type Prober struct {
	cfg    ProberConfig
	client *wire.Client
	admin  *wire.AdminClient
	sem    chan struct{}

	mu       sync.Mutex
	cache    map[string]*wire.ServerInfo
	good     map[string]*wire.ServerInfo // the last answer with a version
	sessRun  map[string]time.Time        // last session refresh per endpoint
	inflight map[string]*call
	started  map[string]time.Time
	errs     map[string]uint64
	sessions map[string]map[netip.AddrPort]seenSession
}

type call struct {
	done chan struct{}
	info *wire.ServerInfo
}

type seenSession struct {
	id          uint64
	first, last time.Time
}

// ErrRateLimited: the endpoint was probed too recently and nothing is cached.
var ErrRateLimited = errors.New("probe rate limited")

// NewProber returns a Prober.
func NewProber(cfg ProberConfig) *Prober {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.TTL, 60*time.Second)
	def(&cfg.ErrTTL, 10*time.Second)
	def(&cfg.MinInterval, 5*time.Second)
	def(&cfg.SessionRetention, 10*time.Minute)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Conns == nil {
		cfg.Conns = wire.NewProbeConns()
	}
	c := wire.Client{}
	if cfg.Client != nil {
		c = *cfg.Client
	}
	c.Conns = cfg.Conns
	a := wire.AdminClient{Timeout: c.Timeout}
	if cfg.Admin != nil {
		a = *cfg.Admin
	}
	a.Conns = cfg.Conns
	return &Prober{
		cfg: cfg, client: &c, admin: &a,
		sem:      make(chan struct{}, cfg.Concurrency),
		cache:    map[string]*wire.ServerInfo{},
		good:     map[string]*wire.ServerInfo{},
		sessRun:  map[string]time.Time{},
		inflight: map[string]*call{},
		started:  map[string]time.Time{},
		errs:     map[string]uint64{},
		sessions: map[string]map[netip.AddrPort]seenSession{},
	}
}

// Conns is the set of this prober's own connections, for the tracer to
// recognise (and not explain) them.
func (p *Prober) Conns() *wire.ProbeConns { return p.cfg.Conns }

// Get returns the cached info of t's server, probing it (srvr, cons, with
// AdminServer fallback) when the cache is cold or stale. Concurrent callers
// for one endpoint share one probe. It returns within ctx and the client
// timeout; the error is non-nil when the server is unreachable or unusable.
func (p *Prober) Get(ctx context.Context, t wire.Target) (*wire.ServerInfo, error) {
	return p.get(ctx, t, getCached)
}

// Refresh probes t now unless it was probed within MinInterval, and returns
// the freshest info.
func (p *Prober) Refresh(ctx context.Context, t wire.Target) (*wire.ServerInfo, error) {
	return p.get(ctx, t, getRefresh)
}

// How get treats the cache.
type getMode int

const (
	getCached   getMode = iota // a fresh enough cached answer will do
	getRefresh                 // probe unless probed within MinInterval
	getSessions                // probe unless probed within sessionInterval
)

// sessionInterval bounds session refreshes per endpoint (see
// RefreshSessions): new connections may come in bursts.
const sessionInterval = time.Second

func (p *Prober) get(ctx context.Context, t wire.Target, mode getMode) (*wire.ServerInfo, error) {
	key := t.Client
	now := p.cfg.Now()
	p.mu.Lock()
	cached := p.cache[key]
	if cached != nil && mode == getCached && now.Sub(cached.ProbedAt) < p.ttl(cached) {
		p.mu.Unlock()
		return cached, infoErr(cached)
	}
	c, running := p.inflight[key]
	if !running {
		limit := p.cfg.MinInterval
		if mode == getSessions {
			limit = sessionInterval
		}
		if last, ok := p.started[key]; ok && now.Sub(last) < limit {
			p.mu.Unlock()
			if cached != nil {
				return cached, infoErr(cached)
			}
			return nil, fmt.Errorf("zookeeper %s: %w", key, ErrRateLimited)
		}
		c = &call{done: make(chan struct{})}
		p.inflight[key] = c
		p.started[key] = now
		// The probe outlives an impatient caller so that the others sharing
		// it still get an answer; its own timeouts bound it.
		go p.run(context.WithoutCancel(ctx), t, c)
	}
	p.mu.Unlock()
	select {
	case <-c.done:
		return c.info, infoErr(c.info)
	case <-ctx.Done():
		return nil, fmt.Errorf("zookeeper %s: waiting for probe: %w", key, ctx.Err())
	}
}

func (p *Prober) ttl(si *wire.ServerInfo) time.Duration {
	if si.Err != "" {
		return p.cfg.ErrTTL
	}
	return p.cfg.TTL
}

func infoErr(si *wire.ServerInfo) error {
	if si == nil || si.Err == "" {
		return nil
	}
	return fmt.Errorf("zookeeper %s: %s", si.Endpoint, si.Err)
}

func (p *Prober) run(ctx context.Context, t wire.Target, c *call) {
	p.sem <- struct{}{}
	info := wire.Probe(ctx, p.client, p.admin, t, enrichWords(), p.cfg.Now())
	<-p.sem
	p.mu.Lock()
	p.cache[t.Client] = info
	if info.Stats != nil {
		p.good[t.Client] = info
	}
	if info.Err != "" {
		p.errs[t.Client]++
	}
	p.rememberSessionsLocked(info)
	delete(p.inflight, t.Client)
	p.mu.Unlock()
	c.info = info
	close(c.done)
}

// ProbeAll asks every safe word, uncached, for reports. It still counts
// against the concurrency bound.
func (p *Prober) ProbeAll(ctx context.Context, t wire.Target) *wire.ServerInfo {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return &wire.ServerInfo{Endpoint: t.Client, Admin: t.Admin, ProbedAt: p.cfg.Now(), Err: ctx.Err().Error()}
	}
	info := wire.Probe(ctx, p.client, p.admin, t, wire.SafeWords(), p.cfg.Now())
	<-p.sem
	p.mu.Lock()
	p.rememberSessionsLocked(info)
	if info.Err != "" {
		p.errs[t.Client]++
	}
	p.mu.Unlock()
	return info
}

// RefreshSessions probes t now for its client list (srvr and cons, or the
// AdminServer's connections), unless that was done within a second: new
// connections are listed with their sessions once set up, so a reset a few
// seconds into a session can name it.
func (p *Prober) RefreshSessions(ctx context.Context, t wire.Target) {
	p.get(ctx, t, getSessions)
}

// ServerFacts is what the server said about itself: its version from the
// last answer that had one, and the last probe's failure after it.
func (p *Prober) ServerFacts(endpoint string) Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s Server
	if g := p.good[endpoint]; g != nil && g.Stats != nil {
		s.At, s.Source, s.Fingerprint, s.Mode = g.ProbedAt, g.VersionSource(), g.Fingerprint, g.Mode
		if g.Stats.VersionErr == "" {
			s.Version = g.Version
		}
	}
	if c := p.cache[endpoint]; c != nil && c.Err != "" && c.ProbedAt.After(s.At) {
		s.FailedAt, s.Failure = c.ProbedAt, c.Err
	}
	return s
}

func (p *Prober) rememberSessionsLocked(info *wire.ServerInfo) {
	m := p.sessions[info.Endpoint]
	if m == nil {
		m = map[netip.AddrPort]seenSession{}
		p.sessions[info.Endpoint] = m
	}
	for _, c := range info.Clients {
		if c.SessionID == 0 || !c.Addr.IsValid() {
			continue
		}
		s, ok := m[c.Addr]
		if !ok || s.id != c.SessionID {
			s = seenSession{id: c.SessionID, first: info.ProbedAt}
		}
		s.last = info.ProbedAt
		m[c.Addr] = s
	}
	for a, s := range m {
		if info.ProbedAt.Sub(s.last) > p.cfg.SessionRetention {
			delete(m, a)
		}
	}
}

// SessionBefore returns the session that client (address:port as the server
// sees it) had on endpoint in a client list taken at or before at, with
// when it was first listed; a zero Session when none was seen.
func (p *Prober) SessionBefore(endpoint string, client netip.AddrPort, at time.Time) Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.sessions[endpoint][unmap(client)]
	if !ok || s.first.After(at) || at.Sub(s.last) > p.cfg.SessionRetention {
		return Session{}
	}
	return Session{ID: wire.ClientConn{SessionID: s.id}.Session(), FirstSeen: s.first}
}

// Infos lists what is cached, by endpoint, for metrics and status.
func (p *Prober) Infos() []wire.ServerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]wire.ServerInfo, 0, len(p.cache))
	for _, si := range p.cache {
		out = append(out, *si)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out
}

// ErrorCounts returns failed probes per endpoint since start.
func (p *Prober) ErrorCounts() map[string]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]uint64, len(p.errs))
	for k, v := range p.errs {
		out[k] = v
	}
	return out
}

// enrichWords is what the enricher needs: version and mode, and the client
// list with session ids.
func enrichWords() []wire.Word { return []wire.Word{wire.Srvr(), wire.Cons()} }

func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
