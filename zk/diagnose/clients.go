package diagnose

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/zk/hostscan"
	"github.com/rstwatch/rstwatch/zk/wire"
)

// Bounds of what the Enricher remembers about local processes and
// connections.
const (
	// connRetention: how long a connection seen being made is remembered;
	// its resets may come long after (a session lives for hours, but its
	// facts are only needed for the set-up and a late reset).
	connRetention = 10 * time.Minute
	// procRetention: a client process's runtime and library are kept this
	// long after it was last seen, so resets after it exited (TIME_WAIT,
	// late data) still name them.
	procRetention = 10 * time.Minute
	// pairWindow: the receiving row of a reset follows the sending row by
	// microseconds on loopback; this is generous.
	pairWindow = 2 * time.Second
	maxConns   = 1 << 16
	maxProcs   = 4096
	maxRows    = 4096
	// maxRowsPerKey: the rows kept per direction and tuple within the
	// window (one end can send several resets on a connection at once).
	maxRowsPerKey = 4
	// rstwatchTTL: how long "pid N is (not) an rstwatch" is trusted.
	rstwatchTTL = 10 * time.Second
	// sessionDelay: a new connection's session is listed by the server
	// once set up, a few milliseconds after connect on a healthy server.
	sessionDelay = 500 * time.Millisecond
	jobQueue     = 1024
)

// connKey is a connection as (client end, server end), or for sends as
// (sender's end, receiver's end).
type connKey struct{ a, b netip.AddrPort }

type connRecord struct {
	made       time.Time
	accepted   bool // the server's accept was seen
	clientPID  uint32
	clientComm string
	serverPID  uint32
}

type procRecord struct {
	comm      string
	proc      hostscan.Process
	ok        bool // proc was read
	learnedAt time.Time
	seen      time.Time
}

// rowKey is one row of a reset: its direction and this end's tuple.
type rowKey struct {
	dir           event.Direction
	local, remote netip.AddrPort
}

type seenRow struct {
	at     time.Time
	reason string
	state  string
	owner  *event.Owner
	ts     event.TSOption
	// others: the reasons of other sending rows of this connection that
	// the receiving row could also have taken (set by other only).
	others []string
}

type selfCheck struct {
	yes bool
	at  time.Time
}

// clients is the Enricher's memory of local client processes and of the
// connections the kernel saw being made, fed by Connected.
type clients struct {
	scan *hostscan.Scanner
	now  func() time.Time

	mu      sync.Mutex
	conns   map[connKey]*connRecord
	procs   map[uint32]*procRecord
	rows    map[rowKey][]seenRow  // recent rows, to pair both ends of one reset
	foreign map[connKey]time.Time // connections of other rstwatch processes
	self    map[uint32]selfCheck

	jobs    chan connectJob
	dropped atomic.Uint64 // Connect notices not learned from: queue full
}

type connectJob struct {
	pid           uint32
	local, remote netip.AddrPort
}

func newClients(scan *hostscan.Scanner, now func() time.Time) *clients {
	return &clients{
		scan: scan, now: now,
		conns: map[connKey]*connRecord{}, procs: map[uint32]*procRecord{},
		rows: map[rowKey][]seenRow{}, foreign: map[connKey]time.Time{}, self: map[uint32]selfCheck{},
		jobs: make(chan connectJob, jobQueue),
	}
}

// Connected hears of a connection to or from a ZooKeeper port as the
// kernel saw it being made. It is called on the ring-buffer reading
// goroutine and does not block: it records the connection and queues the
// process for Start's worker, which reads its runtime and library while it
// lives and has the server's session list refreshed.
func (e *Enricher) Connected(c *event.Connect) {
	if c == nil || e.prober.Conns().Contains(c.Local, c.Remote) {
		return
	}
	local, remote := unmap(c.Local), unmap(c.Remote)
	key := connKey{local, remote}
	if c.Accepted {
		key = connKey{remote, local}
	}
	at := c.Time
	if at.IsZero() {
		at = e.now()
	}
	cl := e.clients
	cl.mu.Lock()
	r := cl.conns[key]
	// A connect on ports that connected more than a second ago, or a second
	// accept, is a new connection on reused ports.
	if r == nil || !c.Accepted && at.Sub(r.made) > time.Second || c.Accepted && r.accepted {
		if len(cl.conns) >= maxConns {
			cl.pruneLocked(at)
		}
		r = &connRecord{made: at}
		cl.conns[key] = r
	}
	if c.Accepted {
		r.accepted, r.serverPID = true, c.PID
	} else {
		r.made, r.clientPID, r.clientComm = at, c.PID, c.Comm
	}
	cl.mu.Unlock()
	select {
	case cl.jobs <- connectJob{pid: c.PID, local: local, remote: remote}:
	default:
		cl.dropped.Add(1)
	}
}

// Start runs the worker behind Connected until ctx ends. Run calls it.
func (e *Enricher) Start(ctx context.Context) {
	go func() {
		pending := map[string]bool{}
		var pmu sync.Mutex
		for {
			select {
			case <-ctx.Done():
				return
			case j := <-e.clients.jobs:
				_, role, t, serverPID, ok := e.match(j.local, j.remote)
				if !ok {
					continue
				}
				if role == RoleClient && int(j.pid) != serverPID {
					e.clients.process(j.pid, "")
				}
				// One session refresh per endpoint at a time, a moment
				// after the connection, when its session is set up.
				pmu.Lock()
				if pending[t.Client] {
					pmu.Unlock()
					continue
				}
				pending[t.Client] = true
				pmu.Unlock()
				time.AfterFunc(sessionDelay, func() {
					e.prober.RefreshSessions(ctx, t)
					e.learnLocalClients()
					pmu.Lock()
					delete(pending, t.Client)
					pmu.Unlock()
				})
			}
		}
	}()
}

// DroppedConnects is how many Connect notices came faster than they could
// be learned from.
func (e *Enricher) DroppedConnects() uint64 { return e.clients.dropped.Load() }

// conn returns the connection (client, server) as seen being made, nil
// when not seen.
func (cl *clients) conn(client, server netip.AddrPort) *connRecord {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	r := cl.conns[connKey{client, server}]
	if r == nil {
		return nil
	}
	cp := *r
	return &cp
}

// forget drops the connection (client, server) as seen being made before
// at: a new attempt on the same ports is another connection.
func (cl *clients) forget(client, server netip.AddrPort, at time.Time) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	k := connKey{client, server}
	if r := cl.conns[k]; r != nil && !r.made.After(at) {
		delete(cl.conns, k)
	}
}

// process returns what is known of a client process: read now while it
// lives (cached per process), else what was read while it lived.
func (cl *clients) process(pid uint32, comm string) Client {
	now := cl.now()
	p, err := cl.scan.Process(int(pid))
	cl.mu.Lock()
	defer cl.mu.Unlock()
	r := cl.procs[pid]
	if err == nil {
		if r == nil || !r.ok || r.proc.Start != p.Start {
			if r == nil && len(cl.procs) >= maxProcs {
				cl.pruneLocked(now)
			}
			r = &procRecord{comm: comm, proc: p, ok: true, learnedAt: now}
			cl.procs[pid] = r
		}
	}
	if r == nil {
		return Client{PID: pid, Comm: comm}
	}
	r.seen = now
	if comm == "" {
		comm = r.comm
	}
	return Client{
		PID: pid, Comm: comm,
		Runtime: r.proc.Runtime.Kind, RuntimeSource: r.proc.Runtime.Source,
		Library: r.proc.Library.Name, Version: r.proc.Library.Version, VersionSource: r.proc.Library.Source,
		Installed: r.proc.Library.Installed, LearnedAt: r.learnedAt,
	}
}

// record remembers a row, so that the other row of the same reset (seen
// on this host, in either order) can be paired with it.
func (cl *clients) record(ev *event.Event) {
	var o *event.Owner
	if ev.Owner != nil {
		cp := *ev.Owner
		o = &cp
	}
	at := ev.Time
	if at.IsZero() {
		at = cl.now()
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.rows) >= maxRows {
		cl.pruneLocked(at)
	}
	k := rowKey{ev.Direction, unmap(ev.Local), unmap(ev.Remote)}
	row := seenRow{at: at, reason: ev.Reason, state: ev.State, owner: o, ts: ev.TSOption}
	rs := cl.rows[k]
	for i := range rs {
		if rs[i].at.Equal(at) && rs[i].reason == row.reason {
			rs[i] = row // the same row again (previewed, then enriched)
			return
		}
	}
	if len(rs) >= maxRowsPerKey {
		rs = rs[1:]
	}
	cl.rows[k] = append(rs, row)
}

// other returns the other row of the reset that (dir, local, remote) saw
// at: the sending row for a receiving one and the other way round, when
// it was seen on this host.
//
// One end may send several resets on a connection microseconds apart (a
// close, and its listener answering a segment that crossed it); the
// receiving socket takes only the first to reach it. The kernel says which
// kind it took: whether the RST carried the timestamp option (an active
// reset does on a connection that uses timestamps, a reply never), so rows
// of the other kind are ruled out (and with them the pairing, when no other
// is left); so is a reply traced after the receive
// (a reply is traced before it is sent). Of what is left the nearest in
// time is taken, and the others are named (seenRow.others).
func (cl *clients) other(dir event.Direction, local, remote netip.AddrPort, at time.Time, ts event.TSOption) (seenRow, bool) {
	od := event.Send
	if dir == event.Send {
		od = event.Receive
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var cands []seenRow
	for _, r := range cl.rows[rowKey{od, remote, local}] {
		if d := at.Sub(r.at); d <= pairWindow && d >= -pairWindow {
			cands = append(cands, r)
		}
	}
	if ts != event.TSOptionUnknown {
		// A row that says the other kind of RST is not this reset's
		// other end: pairing it would name the wrong sender (the one
		// that was taken may not have been traced, e.g. lost).
		cands = filter(cands, func(r seenRow) bool { return r.ts == event.TSOptionUnknown || r.ts == ts })
		cands = keep(cands, func(r seenRow) bool { return r.ts == ts })
	}
	if dir == event.Receive {
		cands = keep(cands, func(r seenRow) bool { return r.ts != event.TSOptionAbsent || !r.at.After(at) })
	}
	if len(cands) == 0 {
		return seenRow{}, false
	}
	best := 0
	for i, r := range cands {
		if absDur(r.at.Sub(at)) < absDur(cands[best].at.Sub(at)) {
			best = i
		}
	}
	r := cands[best]
	r.others = nil
	for i, c := range cands {
		if i != best {
			r.others = append(r.others, c.reason)
		}
	}
	return r, true
}

// filter returns the rows for which ok holds.
func filter(rows []seenRow, ok func(seenRow) bool) []seenRow {
	var out []seenRow
	for _, r := range rows {
		if ok(r) {
			out = append(out, r)
		}
	}
	return out
}

// keep returns the rows for which ok holds, or all of them when none does:
// a rule that would leave nothing decides nothing.
func keep(rows []seenRow, ok func(seenRow) bool) []seenRow {
	if out := filter(rows, ok); len(out) > 0 {
		return out
	}
	return rows
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func (cl *clients) pruneLocked(now time.Time) {
	for k, r := range cl.conns {
		if now.Sub(r.made) > connRetention {
			delete(cl.conns, k)
		}
	}
	if len(cl.conns) >= maxConns {
		clear(cl.conns) // a flood of connections: start over
	}
	for pid, r := range cl.procs {
		if now.Sub(r.seen) > procRetention && now.Sub(r.learnedAt) > procRetention {
			delete(cl.procs, pid)
		}
	}
	if len(cl.procs) >= maxProcs {
		clear(cl.procs)
	}
	for k, rs := range cl.rows {
		if now.Sub(rs[len(rs)-1].at) > pairWindow {
			delete(cl.rows, k)
		}
	}
	if len(cl.rows) >= maxRows {
		clear(cl.rows)
	}
	for k, at := range cl.foreign {
		if now.Sub(at) > connRetention {
			delete(cl.foreign, k)
		}
	}
}

// isRstwatch reports whether ev is on a connection of an rstwatch process
// (another instance's probes): its owner, or the process that made the
// connection, runs an rstwatch binary. The connection is remembered by its
// 4-tuple so that the other row of the same reset, owned by the server, is
// recognised too.
func (cl *clients) isRstwatch(ev *event.Event) bool {
	l, r := unmap(ev.Local), unmap(ev.Remote)
	// Every event asks (a storm's too): one lock, no allocation, and the
	// processes' answers from the cache where it has them.
	type proc struct {
		pid  uint32
		comm string
	}
	var ask [3]proc
	n := 0
	cl.mu.Lock()
	if len(cl.foreign) > 0 {
		_, f1 := cl.foreign[connKey{l, r}]
		_, f2 := cl.foreign[connKey{r, l}]
		if f1 || f2 {
			cl.mu.Unlock()
			return true
		}
	}
	if len(cl.conns) > 0 {
		for _, k := range [2]connKey{{l, r}, {r, l}} {
			if c := cl.conns[k]; c != nil && c.clientPID != 0 {
				ask[n] = proc{c.clientPID, c.clientComm}
				n++
			}
		}
	}
	cl.mu.Unlock()
	if o := ev.Owner; o != nil && o.Source != event.OwnerListener {
		ask[n] = proc{o.PID, o.Comm}
		n++
	}
	yes := false
	for _, p := range ask[:n] {
		if yes = cl.rstwatchPID(p.pid, p.comm); yes {
			break
		}
	}
	if yes {
		cl.mu.Lock()
		cl.foreign[connKey{l, r}] = cl.now()
		cl.mu.Unlock()
	}
	return yes
}

// rstwatchPID reports whether pid runs an rstwatch binary (its executable's
// Go build information says it is rstwatch's command). When the process is
// gone, a process named "rstwatch" (comm) is taken for one: a short-lived
// `rstwatch zk probe` may exit before its resets are read.
func (cl *clients) rstwatchPID(pid uint32, comm string) bool {
	now := cl.now()
	cl.mu.Lock()
	c, ok := cl.self[pid]
	cl.mu.Unlock()
	if ok && now.Sub(c.at) < rstwatchTTL {
		return c.yes
	}
	yes, err := cl.scan.IsRstwatch(int(pid))
	if err != nil {
		return comm == "rstwatch"
	}
	cl.mu.Lock()
	if len(cl.self) >= maxProcs {
		clear(cl.self)
	}
	cl.self[pid] = selfCheck{yes: yes, at: now}
	cl.mu.Unlock()
	return yes
}

// endpointOf is match without the AdminServer check: cheap enough for
// every event and every new connection.
func (e *Enricher) endpointOf(local, remote netip.AddrPort) (endpoint netip.AddrPort, role string, t wire.Target, serverPID int, ok bool) {
	local, remote = unmap(local), unmap(remote)
	for _, ls := range e.local {
		if local.Port() == ls.port && (ls.addr.IsUnspecified() || ls.addr == local.Addr()) {
			return local, RoleServer, ls.target, ls.pid, true
		}
	}
	if t, ok := e.named[local]; ok {
		return local, RoleServer, t, 0, true
	}
	if t, ok := e.named[remote]; ok {
		return remote, RoleClient, t, 0, true
	}
	if t, ok := e.members[remote]; ok {
		return remote, RoleClient, t, 0, true
	}
	if e.ports[local.Port()] {
		return local, RoleServer, wire.Target{Client: local.String()}, 0, true
	}
	if e.ports[remote.Port()] {
		return remote, RoleClient, wire.Target{Client: remote.String()}, 0, true
	}
	return netip.AddrPort{}, "", wire.Target{}, 0, false
}

// Preview sees a batch of events before they are enriched one by one
// (pipeline.Previewer): both rows of one reset on this host are recorded
// first, since the kernel reports an active reset's receiving row before
// its sending row, and connections of rstwatch processes are marked so
// that the row without an owner (a refused probe's) is skipped too.
func (e *Enricher) Preview(batch []*event.Event) {
	for _, ev := range batch {
		if _, _, _, _, ok := e.endpointOf(ev.Local, ev.Remote); !ok {
			continue
		}
		e.clients.record(ev)
		if ev.Owner != nil && ev.Owner.Source != event.OwnerListener {
			e.clients.isRstwatch(ev)
		}
	}
}

// learnLocalClients reads, while they live, the processes behind the
// connections the servers list (cons or the AdminServer's connections)
// that come from this host: connections the kernel side did not report
// being made (older than rstwatch, or no connect notices on this kernel)
// still get their client's runtime and library before it exits.
func (e *Enricher) learnLocalClients() {
	var want []hostscan.Conn
	e.clients.mu.Lock()
	for _, si := range e.prober.Infos() {
		srv, err := netip.ParseAddrPort(si.Endpoint)
		if err != nil {
			continue
		}
		for _, c := range si.Clients {
			if !c.Addr.IsValid() || !hostscan.IsLocalAddr(c.Addr.Addr()) {
				continue
			}
			k := connKey{unmap(c.Addr), unmap(srv)}
			if r := e.clients.conns[k]; r != nil && r.clientPID != 0 {
				continue
			}
			want = append(want, hostscan.Conn{Local: k.a, Remote: k.b})
		}
	}
	e.clients.mu.Unlock()
	if len(want) == 0 {
		return
	}
	owners := hostscan.ConnOwners(e.scan.ProcRoot, want)
	for c, pid := range owners {
		e.clients.process(uint32(pid), "")
		e.clients.mu.Lock()
		k := connKey{c.Local, c.Remote}
		if r := e.clients.conns[k]; r == nil {
			e.clients.conns[k] = &connRecord{clientPID: uint32(pid)}
		} else if r.clientPID == 0 {
			r.clientPID = uint32(pid)
		}
		e.clients.mu.Unlock()
	}
}
