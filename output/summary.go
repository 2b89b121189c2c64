package output

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/rstwatch/rstwatch/event"
)

// maxKeys bounds every breakdown: a storm over random ports must not grow
// the summary without limit. Past it, counts go to the "other" row.
const maxKeys = 4096

// other is the key under which counts past maxKeys are folded.
const other = "other"

// counter counts by key, with a bound.
type counter map[string]uint64

func (c counter) add(k string) {
	if _, ok := c[k]; !ok && len(c) >= maxKeys {
		k = other
	}
	c[k]++
}

// Row is one line of a breakdown.
type Row struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

// top returns the n largest rows, largest first, ties by key.
func (c counter) top(n int) []Row {
	rows := make([]Row, 0, len(c))
	for k, v := range c {
		rows = append(rows, Row{k, v})
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

	direction, reason, owner, remote, zk counter
}

func NewSummary(start time.Time) *Summary {
	return &Summary{
		Start:     start,
		direction: counter{}, reason: counter{}, owner: counter{}, remote: counter{}, zk: counter{},
	}
}

// OwnerKey names an owner the way the summary groups it.
func OwnerKey(o *event.Owner) string {
	if o == nil {
		return "(none)"
	}
	return strconv.FormatUint(uint64(o.PID), 10) + "/" + o.Comm
}

func (s *Summary) Add(e *event.Event) {
	s.Total++
	s.direction.add(e.Direction.String())
	s.reason.add(e.Reason)
	s.owner.add(OwnerKey(e.Owner))
	if e.Owner == nil {
		s.OwnerUnknown++
	}
	s.remote.add(e.Remote.String())
	if e.ZK != nil {
		code := event.VerdictUnknown
		if e.Verdict != nil {
			code = e.Verdict.Code
		}
		s.zk.add(e.ZK.Endpoint.String() + " " + code)
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
	ByDirection  []Row     `json:"by_direction"`
	ByReason     []Row     `json:"by_reason"`
	ByOwner      []Row     `json:"by_owner"`
	ByRemote     []Row     `json:"by_remote"`
	ByZK         []Row     `json:"by_zk,omitempty"`
}

func (s *Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(summaryJSON{
		Type: "summary", Start: s.Start.UTC(), End: s.End.UTC(),
		Total: s.Total, Lost: s.Lost, Seen: s.Seen, Filtered: s.Filtered, OwnerUnknown: s.OwnerUnknown,
		ByDirection: s.direction.top(0),
		ByReason:    s.reason.top(rowsShown),
		ByOwner:     s.owner.top(rowsShown),
		ByRemote:    s.remote.top(rowsShown),
		ByZK:        s.zk.top(rowsShown),
	})
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
	section := func(title string, rows []Row) {
		if len(rows) == 0 {
			return
		}
		p("%s:\n", title)
		for _, r := range rows {
			p("  %8d  %s\n", r.Count, printable(r.Key))
		}
	}
	section("by direction", s.direction.top(0))
	section("by reason", s.reason.top(rowsShown))
	section("by owner (pid/comm)", s.owner.top(rowsShown))
	section("by remote endpoint", s.remote.top(rowsShown))
	section("by ZooKeeper endpoint and verdict", s.zk.top(rowsShown))
}

func (s *Summary) String() string {
	var out []byte
	s.text(func(format string, args ...any) { out = fmt.Appendf(out, format, args...) })
	return string(out)
}
