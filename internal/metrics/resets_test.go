package metrics

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/tracer"
)

func row(dir event.Direction, comm string, pid uint32, n uint64) tracer.Count {
	return tracer.Count{Direction: dir, Reason: "NO_SOCKET", OwnerPID: pid, OwnerComm: comm, OwnerSource: event.OwnerSocket, Count: n}
}

func total(r *resets) (sum uint64) {
	for _, v := range r.totals {
		sum += v
	}
	return sum
}

func TestCommsFoldedPastTheCap(t *testing.T) {
	r := newResets(Limits{OwnerComms: 3, ZKEndpoints: 2, Series: 100})
	var rows []tracer.Count
	for i := range 10 {
		rows = append(rows, row(event.Send, fmt.Sprintf("proc%d", i), uint32(100+i), 2))
	}
	r.observe(rows, nil, nil, nil)
	comms := map[string]uint64{}
	for s, v := range r.totals {
		comms[s.comm] += v
	}
	if len(comms) != 4 || comms[Other] != 14 {
		t.Fatalf("want 3 names and other=14, got %v", comms)
	}
	if r.folded["owner_comm"] != 14 {
		t.Errorf("folded owner_comm = %d, want 14", r.folded["owner_comm"])
	}
	if total(r) != 20 {
		t.Errorf("total = %d, want 20: folding must not lose resets", total(r))
	}
}

func TestZKEndpointsFoldedAndVerdictAskedOnlyOnGrowth(t *testing.T) {
	r := newResets(Limits{OwnerComms: 10, ZKEndpoints: 1, Series: 100})
	asked := 0
	verdict := func(*tracer.Count) string { asked++; return event.VerdictKnownBug }
	rows := []tracer.Count{row(event.Receive, "java", 7, 1), row(event.Receive, "java", 7, 1)}
	rows[0].ZKEndpoint = netip.MustParseAddrPort("10.0.0.1:2181")
	rows[1].ZKEndpoint = netip.MustParseAddrPort("10.0.0.2:2181")
	r.observe(rows, verdict, nil, nil)
	r.observe(rows, verdict, nil, nil) // no growth: no question
	if asked != 2 {
		t.Errorf("verdict asked %d times, want 2", asked)
	}
	want := map[series]uint64{
		{"receive", "NO_SOCKET", "java", "10.0.0.1:2181", event.VerdictKnownBug, workloadLabels{}}: 1,
		{"receive", "NO_SOCKET", "java", Other, event.VerdictKnownBug, workloadLabels{}}:           1,
	}
	if fmt.Sprint(r.totals) != fmt.Sprint(want) {
		t.Errorf("totals = %v, want %v", r.totals, want)
	}
	if r.folded["zk_endpoint"] != 1 {
		t.Errorf("folded zk_endpoint = %d", r.folded["zk_endpoint"])
	}
}

func TestSeriesCap(t *testing.T) {
	r := newResets(Limits{OwnerComms: 1000, ZKEndpoints: 10, Series: 5})
	var rows []tracer.Count
	for i := range 50 {
		rows = append(rows, row(event.Send, fmt.Sprintf("p%d", i), uint32(i+1), 1))
	}
	r.observe(rows, nil, nil, nil)
	if len(r.totals) != 6 { // 5 + the folded one
		t.Errorf("series = %d, want 6: %v", len(r.totals), r.totals)
	}
	if total(r) != 50 || r.folded["series"] != 45 {
		t.Errorf("total %d folded %d", total(r), r.folded["series"])
	}
}

// The kernel's rows of an exited owner are deleted; the totals must not
// go down, and a reused pid starts afresh.
func TestMonotonicAcrossForget(t *testing.T) {
	r := newResets(Limits{})
	r.observe([]tracer.Count{row(event.Send, "a", 5, 10), row(event.Send, "", 0, 3)}, nil, nil, nil)
	r.observe([]tracer.Count{row(event.Send, "a", 5, 12), row(event.Send, "", 0, 4)}, nil, nil, nil)
	r.forget(5)
	r.observe([]tracer.Count{row(event.Send, "", 0, 4)}, nil, nil, nil)
	r.observe([]tracer.Count{row(event.Send, "a", 5, 1), row(event.Send, "", 0, 4)}, nil, nil, nil) // pid 5 reused
	if got := r.totals[series{"send", "NO_SOCKET", "a", "", verdictNone, workloadLabels{}}]; got != 13 {
		t.Errorf("a = %d, want 13", got)
	}
	if got := r.totals[series{"send", "NO_SOCKET", unknownComm, "", verdictNone, workloadLabels{}}]; got != 4 || r.ownerUnknown != 4 {
		t.Errorf("unknown = %d, owner_unknown = %d, want 4", got, r.ownerUnknown)
	}
	// A row that shrank without being forgotten was recreated: all new.
	r.observe([]tracer.Count{row(event.Send, "a", 5, 0)}, nil, nil, nil)
	r.observe([]tracer.Count{row(event.Send, "a", 5, 2)}, nil, nil, nil)
	if got := r.totals[series{"send", "NO_SOCKET", "a", "", verdictNone, workloadLabels{}}]; got != 15 {
		t.Errorf("a = %d, want 15", got)
	}
}

func TestOverflowAndOwnProbes(t *testing.T) {
	r := newResets(Limits{})
	probe := row(event.Receive, "rstwatch", 42, 3)
	probe.ZKEndpoint = netip.MustParseAddrPort("127.0.0.1:2181")
	r.observe([]tracer.Count{{Overflow: true, Count: 9}, probe}, nil, func(c *tracer.Count) bool { return c.OwnerPID == 42 }, nil)
	if got := r.totals[series{directionUnknown, "UNKNOWN", Other, "", verdictNone, workloadLabels{}}]; got != 9 {
		t.Errorf("overflow = %d, want 9", got)
	}
	if r.self != 3 || len(r.totals) != 1 {
		t.Errorf("own probes: self=%d totals=%v", r.self, r.totals)
	}
}

// The kernel keys rows by namespace and the owner's cgroup too: rows that
// differ only there are tracked apart and add up in one series.
func TestRowsDifferingByNamespaceAndCgroupAddUp(t *testing.T) {
	r := newResets(Limits{OwnerComms: 10, ZKEndpoints: 10, Series: 100})
	rows := []tracer.Count{row(event.Send, "java", 7, 3), row(event.Send, "java", 7, 5), row(event.Send, "java", 7, 11)}
	rows[1].NetNS = 4026532000
	rows[2].OwnerCgroup = 42
	r.observe(rows, nil, nil, nil)
	rows[0].Count, rows[1].Count = 4, 6
	r.observe(rows, nil, nil, nil)
	if got := r.totals[series{"send", "NO_SOCKET", "java", "", verdictNone, workloadLabels{}}]; got != 21 {
		t.Fatalf("send/java = %d, want 4+6+11 = 21 (totals %v)", got, r.totals)
	}
}
