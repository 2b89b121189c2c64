package zk

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"
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
	Client           *Client      // nil: defaults
	Admin            *AdminClient // nil: defaults
	Conns            *ProbeConns  // nil: a new set (see Prober.Conns)
	Now              func() time.Time
}

// Prober probes ZooKeeper servers with caching, bounded concurrency,
// per-endpoint rate limiting and one shared probe per endpoint at a time.
type Prober struct {
	cfg    ProberConfig
	client *Client
	admin  *AdminClient
	sem    chan struct{}

	mu       sync.Mutex
	cache    map[string]*ServerInfo
	inflight map[string]*call
	started  map[string]time.Time
	errs     map[string]uint64
	sessions map[string]map[netip.AddrPort]seenSession
}

type call struct {
	done chan struct{}
	info *ServerInfo
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
		cfg.Conns = NewProbeConns()
	}
	c := Client{}
	if cfg.Client != nil {
		c = *cfg.Client
	}
	c.Conns = cfg.Conns
	a := AdminClient{Timeout: c.Timeout}
	if cfg.Admin != nil {
		a = *cfg.Admin
	}
	a.Conns = cfg.Conns
	return &Prober{
		cfg: cfg, client: &c, admin: &a,
		sem:      make(chan struct{}, cfg.Concurrency),
		cache:    map[string]*ServerInfo{},
		inflight: map[string]*call{},
		started:  map[string]time.Time{},
		errs:     map[string]uint64{},
		sessions: map[string]map[netip.AddrPort]seenSession{},
	}
}

// Conns is the set of this prober's own connections, for the tracer to
// recognise (and not explain) them.
func (p *Prober) Conns() *ProbeConns { return p.cfg.Conns }

// Get returns the cached info of t's server, probing it (srvr, cons, with
// AdminServer fallback) when the cache is cold or stale. Concurrent callers
// for one endpoint share one probe. It returns within ctx and the client
// timeout; the error is non-nil when the server is unreachable or unusable.
func (p *Prober) Get(ctx context.Context, t Target) (*ServerInfo, error) {
	return p.get(ctx, t, false)
}

// Refresh probes t now unless it was probed within MinInterval, and returns
// the freshest info.
func (p *Prober) Refresh(ctx context.Context, t Target) (*ServerInfo, error) {
	return p.get(ctx, t, true)
}

func (p *Prober) get(ctx context.Context, t Target, force bool) (*ServerInfo, error) {
	key := t.Client
	now := p.cfg.Now()
	p.mu.Lock()
	cached := p.cache[key]
	if cached != nil && !force && now.Sub(cached.ProbedAt) < p.ttl(cached) {
		p.mu.Unlock()
		return cached, infoErr(cached)
	}
	c, running := p.inflight[key]
	if !running {
		if last, ok := p.started[key]; ok && now.Sub(last) < p.cfg.MinInterval {
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

func (p *Prober) ttl(si *ServerInfo) time.Duration {
	if si.Err != "" {
		return p.cfg.ErrTTL
	}
	return p.cfg.TTL
}

func infoErr(si *ServerInfo) error {
	if si == nil || si.Err == "" {
		return nil
	}
	return fmt.Errorf("zookeeper %s: %s", si.Endpoint, si.Err)
}

func (p *Prober) run(ctx context.Context, t Target, c *call) {
	p.sem <- struct{}{}
	info := probeWords(ctx, p.client, p.admin, t, enrichWords(), p.cfg.Now())
	<-p.sem
	p.mu.Lock()
	p.cache[t.Client] = info
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
func (p *Prober) ProbeAll(ctx context.Context, t Target) *ServerInfo {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return &ServerInfo{Endpoint: t.Client, Admin: t.Admin, ProbedAt: p.cfg.Now(), Err: ctx.Err().Error()}
	}
	info := probeWords(ctx, p.client, p.admin, t, SafeWords(), p.cfg.Now())
	<-p.sem
	p.mu.Lock()
	p.rememberSessionsLocked(info)
	if info.Err != "" {
		p.errs[t.Client]++
	}
	p.mu.Unlock()
	return info
}

func (p *Prober) rememberSessionsLocked(info *ServerInfo) {
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
// sees it) had on endpoint in a client list taken at or before at, "" when
// none was seen.
func (p *Prober) SessionBefore(endpoint string, client netip.AddrPort, at time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.sessions[endpoint][unmap(client)]
	if !ok || s.first.After(at) || at.Sub(s.last) > p.cfg.SessionRetention {
		return ""
	}
	return ClientConn{SessionID: s.id}.Session()
}

// Infos lists what is cached, by endpoint, for metrics and status.
func (p *Prober) Infos() []ServerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ServerInfo, 0, len(p.cache))
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
