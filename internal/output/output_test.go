package output

import (
	"bytes"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Workloads as internal/workload names them.
var (
	zkPod = &event.Workload{Cgroup: 9120,
		Path:      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f3a8c2e_1b4d_4e6f_9a0b_7c8d9e0f1a2b.slice/cri-containerd-4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a.scope",
		Unit:      "cri-containerd-4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a.scope",
		Container: &event.Container{ID: "4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a", Runtime: "containerd", Name: "zookeeper"},
		Pod:       &event.Pod{Namespace: "zk", Name: "zk-0", UID: "5f3a8c2e-1b4d-4e6f-9a0b-7c8d9e0f1a2b", Container: "zookeeper"}}
	dockerCtr = &event.Workload{Cgroup: 9200, Path: "/system.slice/docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
		Unit:      "docker-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope",
		Container: &event.Container{ID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Runtime: "docker"}}
	rootCgroup = &event.Workload{Cgroup: 1, Path: "/"}
	evilUnit   = &event.Workload{Cgroup: 77, Path: "/system.slice/evil\x01\"u\xff.service", Unit: "evil\x01\"u\xff.service"}
	userUnit   = &event.Workload{Cgroup: 5000, Path: "/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service",
		Unit: "user@1000.service", UserUnit: "syncthing.service"}
)

func sample() []event.Event {
	t0 := time.Date(2026, 11, 25, 16, 38, 33, 18470000, time.UTC)
	return []event.Event{
		{
			Time: t0, Direction: event.Send,
			Local:  netip.MustParseAddrPort("127.0.0.1:1"),
			Remote: netip.MustParseAddrPort("127.0.0.1:43226"),
			Reason: "NO_SOCKET", NetNS: 4026531840,
			Task: event.Task{PID: 2339, TID: 2340, Comm: "python3", Thread: "worker", Cgroup: 9200, Workload: dockerCtr},
		},
		{
			Time: t0.Add(time.Microsecond), Direction: event.Receive,
			Local:  netip.MustParseAddrPort("[2001:db8::1]:52574"),
			Remote: netip.MustParseAddrPort("[2001:db8::2]:10245"),
			State:  "ESTABLISHED", Reason: "UNKNOWN", NetNS: 4026532000, Cookie: 4242,
			Task:  event.Task{PID: 0, TID: 0, Comm: "swapper/1", Thread: "swapper/1", Cgroup: 1, Workload: rootCgroup},
			Owner: &event.Owner{PID: 4211, TID: 4215, Comm: "java", Alive: false, Source: event.OwnerTuple, Cgroup: 9120, Workload: zkPod},
			ZK: &event.ZK{Endpoint: netip.MustParseAddrPort("[2001:db8::2]:10245"), Role: "client",
				ServerVersion: "3.4.14", ServerVersionAt: t0.Add(-12 * time.Second), Mode: "follower", Session: "0x100000abc",
				ClientPID: 4211, ClientRuntime: "java", ClientLibrary: "Apache ZooKeeper Java client", ClientVersion: "3.4.5"},
			Verdict: &event.Verdict{Code: event.VerdictKnownBug, Situation: "UNREAD_DATA", Text: `client library 3.4.5 "is" older than 3.4.6`,
				Sender: &event.SendingRow{Local: netip.MustParseAddrPort("[2001:db8::2]:10245"), Reason: "TCP_ABORT_ON_CLOSE",
					Owner: &event.Owner{PID: 4000, Comm: "java", Alive: true, Source: event.OwnerSocket}}},
		},
		{
			Time: t0.Add(2 * time.Microsecond), Direction: event.Send,
			Local:  netip.MustParseAddrPort("127.0.0.1:2181"),
			Remote: netip.MustParseAddrPort("127.0.0.1:50000"),
			State:  "CLOSE", Reason: "TCP_ABORT_ON_CLOSE", NetNS: 4026531840,
			Task:  event.Task{PID: 77, TID: 78, Comm: "evil\x01\"name\xff", Thread: "t"},
			Owner: &event.Owner{PID: 77, Comm: "evil\x01\"name\xff", Alive: true, Source: event.OwnerSocket, Cgroup: 77, Workload: evilUnit},
		},
		{
			Time: t0.Add(3 * time.Microsecond), Direction: event.Receive,
			Local:  netip.MustParseAddrPort("127.0.0.1:50002"),
			Remote: netip.MustParseAddrPort("127.0.0.1:2181"),
			State:  "SYN_SENT", Reason: "UNKNOWN", NetNS: 4026531840,
			Task:  event.Task{PID: 4300, TID: 4301, Comm: "java", Thread: "main", Cgroup: 9120},
			Owner: &event.Owner{PID: 4300, TID: 4301, Comm: "java", Alive: true, Source: event.OwnerSocket, Cgroup: 9120, Workload: zkPod},
		},
		{
			Time: t0.Add(4 * time.Microsecond), Direction: event.Send,
			Local:  netip.MustParseAddrPort("127.0.0.1:22000"),
			Remote: netip.MustParseAddrPort("127.0.0.1:50003"),
			State:  "ESTABLISHED", Reason: "TCP_ABORT_ON_DATA", NetNS: 4026531840,
			Task:  event.Task{PID: 5001, TID: 5001, Comm: "syncthing", Thread: "syncthing", Cgroup: 5000},
			Owner: &event.Owner{PID: 5001, TID: 5001, Comm: "syncthing", Alive: true, Source: event.OwnerSocket, Cgroup: 5000, Workload: userUnit},
		},
		{
			Time: t0.Add(5 * time.Microsecond), Direction: event.Send,
			Local:  netip.MustParseAddrPort("127.0.0.1:8080"),
			Remote: netip.MustParseAddrPort("127.0.0.1:50004"),
			State:  "ESTABLISHED", Reason: "TCP_ABORT_ON_DATA", NetNS: 4026531840,
			Task:  event.Task{PID: 6001, TID: 6001, Comm: "nginx", Thread: "nginx"},
			Owner: &event.Owner{PID: 6001, TID: 6001, Comm: "nginx", Alive: true, Source: event.OwnerSocket},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func render(t *testing.T, s Sink, buf *bytes.Buffer) {
	t.Helper()
	sum := NewSummary(time.Date(2026, 11, 25, 16, 38, 30, 0, time.UTC))
	for _, e := range sample() {
		sum.Add(&e)
		if err := s.Event(&e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Lost(3); err != nil {
		t.Fatal(err)
	}
	sum.Lost = 3
	sum.OwnerTableFull, sum.KernelMissed = 2, 5 // both must reach the JSON and the table
	sum.End = sum.Start.Add(5 * time.Second)
	if err := s.Summary(sum); err != nil {
		t.Fatal(err)
	}
}

func TestJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	render(t, NewJSON(&buf), &buf)
	golden(t, "events.jsonl", buf.Bytes())
	// Every line is valid JSON, and what it says round-trips.
	for i, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i+1, err, line)
		}
	}
	var first struct {
		Owner  *struct{} `json:"owner"`
		State  *string   `json:"state"`
		Cookie *uint64   `json:"cookie"`
		Task   struct{ Comm string }
	}
	json.Unmarshal([]byte(strings.SplitN(buf.String(), "\n", 2)[0]), &first)
	if first.Owner != nil || first.State != nil || first.Cookie != nil || first.Task.Comm != "python3" {
		t.Errorf("unknowns must be null: %+v", first)
	}
	var third struct{ Task struct{ Comm string } }
	json.Unmarshal([]byte(strings.Split(buf.String(), "\n")[2]), &third)
	if third.Task.Comm != "evil\x01\"name\uFFFD" {
		t.Errorf("hostile comm decoded as %q", third.Task.Comm)
	}
}

func TestTableGolden(t *testing.T) {
	t.Setenv("TZ", "UTC")
	var buf bytes.Buffer
	render(t, NewTable(&buf), &buf)
	golden(t, "events.table", buf.Bytes())
	for i, line := range strings.Split(buf.String(), "\n") {
		if n := len([]rune(line)); n > 160 {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, line)
		}
	}
}

// With the WORKLOAD column: the owner's pod, else container, else unit,
// and the task's where it is another; at most 21 columns more.
func TestTableWorkloadGolden(t *testing.T) {
	t.Setenv("TZ", "UTC")
	var buf bytes.Buffer
	tb := NewTable(&buf)
	tb.Workload = true
	render(t, tb, &buf)
	golden(t, "events_workload.table", buf.Bytes())
	for i, line := range strings.Split(buf.String(), "\n") {
		if n := len([]rune(line)); n > 160+21 {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, line)
		}
	}
}

// The JSON names the owner's workload, and the task's only where the
// enricher set it (another cgroup than the owner's).
func TestJSONWorkload(t *testing.T) {
	var buf bytes.Buffer
	render(t, NewJSON(&buf), &buf)
	type wl struct {
		Cgroup *struct {
			ID   uint64  `json:"id"`
			Path *string `json:"path"`
		} `json:"cgroup"`
		Unit      string `json:"unit"`
		UserUnit  string `json:"user_unit"`
		Container *struct {
			ID, Runtime, Name *string
		} `json:"container"`
		Pod *struct {
			Namespace, Name, UID string
			Container            *string
		} `json:"pod"`
	}
	var lines []struct {
		Task  wl  `json:"task"`
		Owner *wl `json:"owner"`
	}
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n")[:6] {
		var v struct {
			Task  wl  `json:"task"`
			Owner *wl `json:"owner"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, v)
	}
	if c := lines[0].Task.Container; c == nil || *c.Runtime != "docker" || c.Name != nil || lines[0].Owner != nil {
		t.Errorf("no owner, task in a docker container: %s", strings.Split(buf.String(), "\n")[0])
	}
	if p := lines[1].Owner.Pod; p == nil || p.Namespace != "zk" || p.Name != "zk-0" || *p.Container != "zookeeper" ||
		lines[1].Owner.Cgroup.ID != 9120 || lines[1].Task.Cgroup == nil || *lines[1].Task.Cgroup.Path != "/" {
		t.Errorf("pod owner: %+v", lines[1])
	}
	if lines[3].Task.Cgroup != nil || lines[3].Owner.Pod == nil {
		t.Errorf("the task in the owner's cgroup repeats it: %+v", lines[3])
	}
	if lines[4].Owner.Unit != "user@1000.service" || lines[4].Owner.UserUnit != "syncthing.service" {
		t.Errorf("user unit: %+v", lines[4].Owner)
	}
	if lines[5].Owner.Cgroup != nil || lines[5].Owner.Unit != "" {
		t.Errorf("unknown cgroup must be null: %+v", lines[5].Owner)
	}
}

// "by owner" groups by the most specific name known: two processes of one
// pod are one row, even when the pod's workload was made again.
func TestSummaryByWorkload(t *testing.T) {
	s := NewSummary(time.Now())
	again := *zkPod
	for _, o := range []event.Owner{
		{PID: 1, Comm: "java", Workload: zkPod},
		{PID: 2, Comm: "java", Workload: zkPod},
		{PID: 3, Comm: "java", Workload: &again},
		{PID: 4, Comm: "java", Workload: rootCgroup},
		{PID: 5, Comm: "sleep", Workload: userUnit},
	} {
		s.Add(&event.Event{Owner: &o})
	}
	got := s.owner.top(0, ownerName)
	want := []Row{{"pod zk/zk-0 (container zookeeper)", 3}, {"4/java", 1}, {"user unit syncthing.service of user@1000.service", 1}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// Counting an event allocates nothing: the summary runs once per event.
func TestSummaryAddDoesNotAllocate(t *testing.T) {
	s := NewSummary(time.Now())
	evs := sample()
	for i := range evs {
		s.Add(&evs[i])
	}
	if n := testing.AllocsPerRun(100, func() {
		for i := range evs {
			s.Add(&evs[i])
		}
	}); n != 0 {
		t.Fatalf("Add allocates %.1f times", n)
	}
}

// A storm over random ports keeps each breakdown bounded.
func TestSummaryBounded(t *testing.T) {
	s := NewSummary(time.Now())
	for i := range 3 * maxKeys {
		e := event.Event{Remote: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(i)), Reason: "NO_SOCKET"}
		s.Add(&e)
	}
	if len(s.remote.keys) > maxKeys || len(s.remote.idx) > maxKeys || len(s.remote.counts) != len(s.remote.keys) {
		t.Fatalf("remote breakdown grew to %d keys (%d indexed, %d counts)", len(s.remote.keys), len(s.remote.idx), len(s.remote.counts))
	}
	if s.remote.other != 2*maxKeys {
		t.Fatalf("other = %d, want %d", s.remote.other, 2*maxKeys)
	}
	if rows := s.remote.top(1, addrPortName); rows[0].Key != other || rows[0].Count != 2*maxKeys {
		t.Fatalf("top row %+v, want other", rows[0])
	}
}

// The last-key shortcut counts repeated and alternating keys alike.
func TestCounterRepeatsAndAlternates(t *testing.T) {
	c := newCounter[string]()
	for _, k := range []string{"a", "a", "b", "a", "b", "b", "c", "a"} {
		c.add(k)
	}
	got := c.top(0, str)
	want := []Row{{"a", 4}, {"b", 3}, {"c", 1}}
	if !slices.Equal(got, want) {
		t.Fatalf("top = %v, want %v", got, want)
	}
}

// The two-key shortcut counts exactly what a plain map would, bound
// included: random runs over a few keys (storm-like alternation) and many
// (past the bound).
func TestCounterMatchesAPlainCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := []func() *counter[int]{
		newCounter[int],
		// With a hash filter past the bound: a spread hash and one that
		// collides a lot (the filter may only say "not counted" wrongly
		// never, "maybe" often).
		func() *counter[int] { return newHashedCounter(func(k int) uint16 { return uint16(k * 40503) }) },
		func() *counter[int] { return newHashedCounter(func(k int) uint16 { return uint16(k % 7) }) },
	}
	for n := range len(kinds) * 4 {
		distinct := []int{2, 3, 5, 2 * maxKeys}[n%4]
		c := kinds[n/4]()
		want, order := map[int]uint64{}, map[int]bool{}
		var other uint64
		for range 20000 {
			k := rng.IntN(distinct)
			if rng.IntN(4) == 0 {
				k = 0 // a hot key, as a storm's fixed remote
			}
			c.add(k)
			if !order[k] && len(order) >= maxKeys {
				other++
				continue
			}
			order[k] = true
			want[k]++
		}
		if c.other != other {
			t.Fatalf("%d keys: other = %d, want %d", distinct, c.other, other)
		}
		for i, k := range c.keys {
			if c.counts[i] != want[k] {
				t.Fatalf("%d keys: count of %d = %d, want %d", distinct, k, c.counts[i], want[k])
			}
		}
		if len(c.keys) != len(want) {
			t.Fatalf("%d keys: %d counted, want %d", distinct, len(c.keys), len(want))
		}
	}
}
