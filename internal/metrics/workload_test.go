package metrics

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/tracer"
)

func podWorkload(i int) *event.Workload {
	id := fmt.Sprintf("%064x", i+1)
	return &event.Workload{Cgroup: uint64(1000 + i),
		Container: &event.Container{ID: id, Runtime: "containerd", Name: "app"},
		Pod:       &event.Pod{Namespace: fmt.Sprintf("ns%d", i%10), Name: fmt.Sprintf("web-%d", i), UID: fmt.Sprintf("uid-%d", i), Container: "app"}}
}

// The workload labels: a pod's namespace, name and container; a
// container's short id when its name is unknown; a unit only outside
// containers.
func TestWorkloadLabels(t *testing.T) {
	r := newResets(Limits{})
	byPID := map[uint32]*event.Workload{
		10: podWorkload(0),
		11: {Cgroup: 2, Path: "/system.slice/zookeeper.service", Unit: "zookeeper.service"},
		12: {Cgroup: 3, Unit: "docker-" + strings.Repeat("ab", 32) + ".scope", Container: &event.Container{ID: strings.Repeat("ab", 32), Runtime: "docker"}},
		13: {Cgroup: 4, Path: "/"},
	}
	var rows []tracer.Count
	for pid := range byPID {
		rows = append(rows, row(event.Send, "p", pid, 1))
	}
	rows = append(rows, row(event.Send, "", 0, 1))
	r.observe(rows, nil, nil, func(c *tracer.Count) *event.Workload { return byPID[c.OwnerPID] })
	want := map[workloadLabels]uint64{
		{"ns0", "web-0", "app", ""}:       1,
		{"", "", "", "zookeeper.service"}: 1,
		{"", "", "abababababab", ""}:      1,
		{}:                                2, // the root cgroup, and no owner
	}
	got := map[workloadLabels]uint64{}
	for s, v := range r.totals {
		got[s.workloadLabels] += v
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

// 500 pods resetting: the pod label keeps its first 256 values, the rest
// is "other" and counted, the series stay under their cap, and no reset is
// lost; a scrape shows exactly that.
func TestFiveHundredPodsStayBounded(t *testing.T) {
	var rows []tracer.Count
	byPID := map[uint32]*event.Workload{}
	for i := range 500 {
		pid := uint32(100 + i)
		byPID[pid] = podWorkload(i)
		rows = append(rows, row(event.Receive, "java", pid, 3))
	}
	// The pids are made up: a /proc where they live keeps the collector
	// from forgetting them.
	proc := t.TempDir()
	for pid := range byPID {
		if err := os.Mkdir(filepath.Join(proc, fmt.Sprint(pid)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := NewCollector(&fakeKernel{rows: rows}, Options{ProcRoot: proc,
		Workload: func(c *tracer.Count) *event.Workload { return byPID[c.OwnerPID] }})
	out := scrape(t, c)

	pods := map[string]bool{}
	var n, sum int
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "rstwatch_resets_total{") {
			continue
		}
		n++
		var v int
		fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
		sum += v
		i := strings.Index(l, `,pod="`)
		pods[l[i+6:i+6+strings.IndexByte(l[i+6:], '"')]] = true
	}
	if len(pods) != DefaultPods+1 || !pods[Other] {
		t.Errorf("%d pod values (want %d and %q)", len(pods), DefaultPods+1, Other)
	}
	if n > DefaultSeries+1 {
		t.Errorf("%d series, over the cap", n)
	}
	if sum != 1500 {
		t.Errorf("the series sum to %d resets, want 1500", sum)
	}
	if want := fmt.Sprintf(`rstwatch_label_overflow_total{label="pod"} %d`, (500-DefaultPods)*3); !strings.Contains(out, want) {
		t.Errorf("scrape lacks %s", want)
	}
	t.Logf("500 pods: %d series, %d pod values", n, len(pods))
}
