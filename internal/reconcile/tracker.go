package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Tracker reconciles one trace: it reads the kernel's counters when the
// programs are attached (Start) and at the end (Report), and counts the
// traced resets in between (Enrich, CountSkipped). It is an enricher that
// changes nothing.
type Tracker struct {
	kernel  *Kernel
	netns   uint32 // only this namespace (--netns); 0: all
	filters string // filters that keep resets out of the traced counts

	mu          sync.Mutex
	start       map[uint32]Counters
	startAt     time.Time
	sent        map[uint32]uint64
	others      map[uint32]map[event.SenderClass]uint64
	unexplained uint64
	fromOthers  uint64
}

// NewTracker reconciles against k. netnsFilter is --netns (0: every
// namespace); filters names the other filters in force (--port, --pid),
// under which traced counts cover only the resets that match.
func NewTracker(k *Kernel, netnsFilter uint32, filters string) *Tracker {
	return &Tracker{
		kernel: k, netns: netnsFilter, filters: filters,
		sent: map[uint32]uint64{}, others: map[uint32]map[event.SenderClass]uint64{},
	}
}

func (t *Tracker) snapshot() map[uint32]Counters {
	if t.netns != 0 {
		out := map[uint32]Counters{}
		if c, err := t.kernel.Read(t.netns); err == nil {
			out[t.netns] = c
		}
		return out
	}
	return t.kernel.ReadAll(0)
}

// Start reads the kernel's counters; call it once the programs are
// attached, before any reset is counted.
func (t *Tracker) Start() {
	s := t.snapshot()
	t.mu.Lock()
	t.start, t.startAt = s, time.Now()
	t.mu.Unlock()
}

// Enrich counts e.
func (t *Tracker) Enrich(_ context.Context, e *event.Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count(e)
}

func (t *Tracker) count(e *event.Event) {
	switch {
	case e.Direction == event.Send && e.Sender == nil:
		t.sent[e.NetNS]++
	case e.Direction == event.Send:
		m := t.others[e.NetNS]
		if m == nil {
			m = map[event.SenderClass]uint64{}
			t.others[e.NetNS] = m
		}
		m[e.Sender.Class]++
	case e.Sender != nil && e.Sender.Inferred:
		t.unexplained++
	case e.Sender != nil:
		t.fromOthers++
	}
}

// CountSkipped wraps a pipeline skip function (rstwatch's own probe
// connections) so that the resets it drops are still counted as traced:
// the kernel counts them too.
func (t *Tracker) CountSkipped(skip func(*event.Event) bool) func(*event.Event) bool {
	if skip == nil {
		return nil
	}
	return func(e *event.Event) bool {
		if !skip(e) {
			return false
		}
		t.mu.Lock()
		t.count(e)
		t.mu.Unlock()
		return true
	}
}

// Row is one namespace's reconciliation.
type Row struct {
	NetNS uint32 `json:"netns"`
	// Kernel is what the kernel counted during the trace; nil when the
	// namespace's counters could not be read at the end (it is gone, or
	// rstwatch may not enter it: no process in it to read through and no
	// CAP_SYS_ADMIN for setns).
	Kernel *Counters `json:"kernel"`
	// SinceCreation: the namespace was not found at the start, so its
	// counters are taken as counted since it was made.
	SinceCreation bool   `json:"since_creation,omitempty"`
	Traced        uint64 `json:"traced_sends"`
	// Others are resets sent by something else than the TCP stack, seen
	// on the wire (--all-senders), by sender class; the kernel counts none.
	Others map[event.SenderClass]uint64 `json:"other_senders,omitempty"`
}

// Report is the reconciliation at the end of a trace.
type Report struct {
	Rows    []Row  `json:"netns"`
	Filters string `json:"filters,omitempty"`
	// Unexplained counts received resets marked as not sent by a TCP
	// stack (their sender's address is on this host, no send was traced).
	Unexplained uint64 `json:"received_not_from_tcp_stack"`
	// FromOthers counts received resets whose other sender was seen.
	FromOthers uint64 `json:"received_from_other_senders"`
}

// Report reads the counters again and sets them against the traced counts.
// Namespaces where nothing was counted or traced are left out, and under a
// filter (--port, --pid, --count) those where nothing was traced.
func (t *Tracker) Report() *Report {
	end := t.snapshot()
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &Report{Filters: t.filters, Unexplained: t.unexplained, FromOthers: t.fromOthers}
	seen := map[uint32]bool{}
	for _, m := range []map[uint32]Counters{t.start, end} {
		for ns := range m {
			seen[ns] = true
		}
	}
	for ns := range t.sent {
		seen[ns] = true
	}
	for ns := range t.others {
		seen[ns] = true
	}
	for _, ns := range slices.Sorted(maps.Keys(seen)) {
		row := Row{NetNS: ns, Traced: t.sent[ns], Others: t.others[ns]}
		if c, ok := end[ns]; ok {
			s, had := t.start[ns]
			d := c.Sub(s)
			row.Kernel, row.SinceCreation = &d, !had
		}
		if row.Traced == 0 && len(row.Others) == 0 && (row.Kernel == nil || *row.Kernel == (Counters{})) {
			continue
		}
		// Under a filter the kernel's count of a namespace where nothing
		// matched says nothing about what was filtered: leave it out.
		if t.filters != "" && row.Traced == 0 && len(row.Others) == 0 {
			continue
		}
		r.Rows = append(r.Rows, row)
	}
	return r
}

// Text is the summary's lines, beginning "kernel counted N resets sent, M
// traced".
func (r *Report) Text() string {
	var b strings.Builder
	var kernel, traced uint64
	unread := 0
	for _, row := range r.Rows {
		if row.Kernel == nil {
			unread++
			continue
		}
		kernel += row.Kernel.OutRsts
		traced += row.Traced
	}
	fmt.Fprintf(&b, "kernel counted %d resets sent, %d traced", kernel, traced)
	if r.Filters != "" {
		fmt.Fprintf(&b, " (traced: only those matching %s)", r.Filters)
	}
	if unread > 0 {
		fmt.Fprintf(&b, "; the counters of %d namespaces could not be read (gone, or not enterable)", unread)
	}
	b.WriteString("\n")
	if len(r.Rows) > 1 || (len(r.Rows) == 1 && !r.Rows[0].quiet()) {
		for _, row := range r.Rows {
			fmt.Fprintf(&b, "  netns %d: ", row.NetNS)
			switch {
			case row.Kernel == nil:
				fmt.Fprintf(&b, "kernel ? (not readable), traced %d", row.Traced)
			default:
				fmt.Fprintf(&b, "kernel %d, traced %d", row.Kernel.OutRsts, row.Traced)
				if row.SinceCreation {
					b.WriteString(" (kernel: since the namespace was made)")
				}
			}
			if len(row.Others) > 0 {
				b.WriteString("; sent by others, seen on the wire: ")
				for i, c := range slices.Sorted(maps.Keys(row.Others)) {
					if i > 0 {
						b.WriteString(", ")
					}
					fmt.Fprintf(&b, "%s %d", c, row.Others[c])
				}
			}
			b.WriteString("\n")
		}
	}
	if r.Unexplained > 0 {
		fmt.Fprintf(&b, "%d received resets not sent by the TCP stack (inferred: their sender's address is on this host and no TCP send of them was traced)\n", r.Unexplained)
	}
	if r.FromOthers > 0 {
		fmt.Fprintf(&b, "%d received resets were sent by other senders seen on the wire\n", r.FromOthers)
	}
	return b.String()
}

// quiet: a single namespace whose counts agree and has no other senders
// needs no line of its own.
func (row Row) quiet() bool {
	return row.Kernel != nil && !row.SinceCreation && row.Kernel.OutRsts == row.Traced && len(row.Others) == 0
}

// MarshalJSON writes the report as the summary's "kernel" object.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	if r.Rows == nil {
		r.Rows = []Row{}
	}
	return json.Marshal((*plain)(r))
}
