package output

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/workload"
)

// maxKeys bounds every breakdown: a storm over random ports must not grow
// the summary without limit. Past it, counts go to the "other" row.
const maxKeys = 4096

// other is the row under which counts past maxKeys are folded.
const other = "other"

// counter counts by a comparable key, with a bound. Keys are formatted
// only when the summary is written, so counting allocates nothing per event.
// Counts are kept in a slice beside an index, and the last two keys counted
// are compared first: in a storm most events repeat the direction, reason,
// owner and remote of the event before the previous one (the rows of a
// reset's two ends alternate), which then cost no map operation.
type counter[K comparable] struct {
	idx    map[K]int
	keys   []K
	counts []uint64
	recent [2]int // indexes of the last two keys counted, latest first; -1 before
	other  uint64
	// With hash set, a bit per hash of the counted keys: once the bound is
	// reached, a key whose bit is clear is not counted on its own without
	// a map lookup (in a storm every sent row has a new remote port).
	hash func(K) uint16
	bits *[1 << 10]uint64
}

func newHashedCounter[K comparable](hash func(K) uint16) *counter[K] {
	c := newCounter[K]()
	c.hash, c.bits = hash, new([1 << 10]uint64)
	return c
}

func newCounter[K comparable]() *counter[K] {
	return &counter[K]{idx: map[K]int{}, recent: [2]int{-1, -1}}
}

func (c *counter[K]) add(k K) {
	if i := c.recent[0]; i >= 0 && c.keys[i] == k {
		c.counts[i]++
		return
	}
	if i := c.recent[1]; i >= 0 && c.keys[i] == k {
		c.counts[i]++
		c.recent = [2]int{i, c.recent[0]}
		return
	}
	var h uint16
	if c.hash != nil {
		h = c.hash(k)
		if len(c.keys) >= maxKeys && c.bits[h>>6]&(1<<(h&63)) == 0 {
			c.other++
			return
		}
	}
	i, ok := c.idx[k]
	if !ok {
		if len(c.keys) >= maxKeys {
			c.other++
			return
		}
		if c.bits != nil {
			c.bits[h>>6] |= 1 << (h & 63)
		}
		i = len(c.keys)
		c.idx[k] = i
		c.keys = append(c.keys, k)
		c.counts = append(c.counts, 0)
	}
	c.counts[i]++
	c.recent = [2]int{i, c.recent[0]}
}

// Row is one line of a breakdown.
type Row struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

// top returns the n largest rows (all when n is 0), largest first, ties by
// key, with the folded rest as "other".
func (c *counter[K]) top(n int, name func(K) string) []Row {
	rows := make([]Row, 0, len(c.keys)+1)
	at := make(map[string]int, len(c.keys))
	for i, k := range c.keys {
		v := c.counts[i]
		// Keys that are named alike (a cgroup's workload made again once
		// more was learned of it) are one row.
		n := name(k)
		if i, ok := at[n]; ok {
			rows[i].Count += v
			continue
		}
		at[n] = len(rows)
		rows = append(rows, Row{n, v})
	}
	if c.other > 0 {
		rows = append(rows, Row{other, c.other})
	}
	slices.SortFunc(rows, func(a, b Row) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if n > 0 && len(rows) > n {
		rows = rows[:n]
	}
	return rows
}

// ownerKey groups owners by the most specific name known: a workload that
// names a pod, container or unit (the shared, never modified
// *event.Workload of its cgroup; named only when written), else pid/comm.
type ownerKey struct {
	pid  uint32
	comm string
	none bool
	w    *event.Workload
}

type zkKey struct {
	endpoint  netip.AddrPort
	situation string
	verdict   string
}

func str(s string) string                   { return s }
func addrPortName(ap netip.AddrPort) string { return ap.String() }
func zkName(k zkKey) string {
	if k.situation == "" {
		return k.endpoint.String() + " " + k.verdict
	}
	return k.endpoint.String() + " " + k.situation + " " + k.verdict
}
func directionName(d event.Direction) string { return d.String() }
func ownerName(k ownerKey) string {
	if k.w != nil {
		return workload.Describe(k.w)
	}
	if k.none {
		return "(none)"
	}
	return strconv.FormatUint(uint64(k.pid), 10) + "/" + k.comm
}

// Summary totals a trace. It is filled by the pipeline goroutine only.
type Summary struct {
	Start, End time.Time
	Total      uint64
	Lost       uint64 // records the kernel dropped (ring buffer full)
	Seen       uint64 // resets the kernel programs saw, before filters
	Filtered   uint64 // resets the kernel programs filtered out
	// OwnerUnknown counts resets where no owner could be named (including
	// resets no process ever owned, such as a refused SYN).
	OwnerUnknown uint64
	// OwnerTableFull counts sockets whose owner the kernel could not
	// remember because its table was full.
	OwnerTableFull uint64
	// KernelMissed counts program runs the kernel skipped because another
	// BPF program was running on that CPU: resets or socket changes unseen.
	KernelMissed uint64
	// AbortsRetracted counts receive events that were the kernel aborting
	// a socket shut down for reading because data arrived
	// (TCP_ABORT_ON_DATA), not resets received: not shown (Seen has them).
	AbortsRetracted uint64
	// Kernel, when set, sets the kernel's own reset counters against the
	// traced counts (internal/reconcile): a text for people after the
	// totals, and the JSON summary's "kernel" object.
	Kernel interface {
		Text() string
		json.Marshaler
	}

	direction *counter[event.Direction]
	reason    *counter[string]
	owner     *counter[ownerKey]
	remote    *counter[netip.AddrPort]
	zk        *counter[zkKey]
}

// addrPortHash mixes an endpoint's last eight address bytes and its port
// (Fibonacci hashing): cheap, and enough to spread a storm's ports.
func addrPortHash(ap netip.AddrPort) uint16 {
	b := ap.Addr().As16()
	x := binary.LittleEndian.Uint64(b[8:]) ^ uint64(ap.Port())<<48 ^ uint64(ap.Port())
	return uint16((x * 0x9E3779B97F4A7C15) >> 48)
}

func NewSummary(start time.Time) *Summary {
	return &Summary{
		Start:     start,
		direction: newCounter[event.Direction](),
		reason:    newCounter[string](),
		owner:     newCounter[ownerKey](),
		remote:    newHashedCounter(addrPortHash),
		zk:        newCounter[zkKey](),
	}
}

// OwnerKey names an owner by pid/comm.
func OwnerKey(o *event.Owner) string {
	if o == nil {
		return ownerName(ownerKey{none: true})
	}
	return ownerName(ownerKey{pid: o.PID, comm: o.Comm})
}

func ownerKeyOf(o *event.Owner) ownerKey {
	if workload.Named(o.Workload) {
		return ownerKey{w: o.Workload}
	}
	return ownerKey{pid: o.PID, comm: o.Comm}
}

func (s *Summary) Add(e *event.Event) {
	s.Total++
	s.direction.add(e.Direction)
	s.reason.add(e.Reason)
	if e.Owner == nil {
		s.OwnerUnknown++
		s.owner.add(ownerKey{none: true})
	} else {
		s.owner.add(ownerKeyOf(e.Owner))
	}
	s.remote.add(e.Remote)
	if e.ZK != nil {
		k := zkKey{endpoint: e.ZK.Endpoint, verdict: event.VerdictUnknown}
		if e.Verdict != nil {
			k.verdict, k.situation = e.Verdict.Code, e.Verdict.Situation
		}
		s.zk.add(k)
	}
}

// rowsShown bounds each breakdown in the table and JSON output.
const rowsShown = 10

type summaryJSON struct {
	Type         string    `json:"type"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Total        uint64    `json:"total"`
	Lost         uint64    `json:"lost"`
	Seen         uint64    `json:"seen"`
	Filtered     uint64    `json:"filtered"`
	OwnerUnknown uint64    `json:"owner_unknown"`
	OwnerFull    uint64    `json:"owner_table_full"`
	Missed       uint64    `json:"kernel_missed"`
	Retracted    uint64    `json:"aborts_retracted,omitempty"`
	ByDirection  []Row     `json:"by_direction"`
	ByReason     []Row     `json:"by_reason"`
	ByOwner      []Row     `json:"by_owner"`
	ByRemote     []Row     `json:"by_remote"`
	ByZK         []Row     `json:"by_zk,omitempty"`
	Kernel       any       `json:"kernel,omitempty"`
}

func (s *Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(summaryJSON{
		Type: "summary", Start: s.Start.UTC(), End: s.End.UTC(),
		Total: s.Total, Lost: s.Lost, Seen: s.Seen, Filtered: s.Filtered, OwnerUnknown: s.OwnerUnknown,
		OwnerFull: s.OwnerTableFull, Missed: s.KernelMissed, Retracted: s.AbortsRetracted,
		ByDirection: s.direction.top(0, directionName),
		ByReason:    s.reason.top(rowsShown, str),
		ByOwner:     s.owner.top(rowsShown, ownerName),
		ByRemote:    s.remote.top(rowsShown, addrPortName),
		ByZK:        s.zk.top(rowsShown, zkName),
		Kernel:      s.kernelJSON(),
	})
}

// kernelJSON keeps a nil Kernel out of the JSON (a typed nil in an
// interface is not omitted).
func (s *Summary) kernelJSON() any {
	if s.Kernel == nil {
		return nil
	}
	return s.Kernel
}

// text writes the summary for people.
func (s *Summary) text(p func(format string, args ...any)) {
	dur := s.End.Sub(s.Start).Round(time.Millisecond)
	p("\n%d resets in %s", s.Total, dur)
	if s.Lost > 0 {
		p(", %d LOST (ring buffer full: raise --ring-buffer-size)", s.Lost)
	} else {
		p(", none lost")
	}
	if s.Filtered > 0 {
		p(", %d filtered out in the kernel", s.Filtered)
	}
	p("\n")
	if s.KernelMissed > 0 {
		p("%d program runs were skipped by the kernel (another BPF program was running on that CPU): those resets or socket changes were not seen\n", s.KernelMissed)
	}
	if s.Kernel != nil {
		p("%s", s.Kernel.Text())
	}
	switch {
	case s.AbortsRetracted == 1:
		p("1 receive event was the kernel aborting a socket shut down for reading because data arrived (TCP_ABORT_ON_DATA), not a reset received: not shown; the abort's own reset is\n")
	case s.AbortsRetracted > 1:
		p("%d receive events were the kernel aborting sockets shut down for reading because data arrived (TCP_ABORT_ON_DATA), not resets received: not shown; the aborts' own resets are\n", s.AbortsRetracted)
	}
	if s.OwnerTableFull > 0 {
		p("%d sockets' owners were not remembered: their bucket of the owner table was full (raise --owner-table-size)\n", s.OwnerTableFull)
	}
	section := func(title string, rows []Row) {
		if len(rows) == 0 {
			return
		}
		p("%s:\n", title)
		for _, r := range rows {
			p("  %8d  %s\n", r.Count, printable(r.Key))
		}
	}
	section("by direction", s.direction.top(0, directionName))
	section("by reason", s.reason.top(rowsShown, str))
	section("by owner (pod, container or unit, else pid/comm)", s.owner.top(rowsShown, ownerName))
	section("by remote endpoint", s.remote.top(rowsShown, addrPortName))
	section("by ZooKeeper endpoint, situation and verdict", s.zk.top(rowsShown, zkName))
}

func (s *Summary) String() string {
	var out []byte
	s.text(func(format string, args ...any) { out = fmt.Appendf(out, format, args...) })
	return string(out)
}
