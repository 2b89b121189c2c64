package output

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func sample() []event.Event {
	t0 := time.Date(2026, 11, 25, 16, 38, 33, 18470000, time.UTC)
	return []event.Event{
		{
			Time: t0, Direction: event.Send,
			Local:  netip.MustParseAddrPort("127.0.0.1:1"),
			Remote: netip.MustParseAddrPort("127.0.0.1:43226"),
			Reason: "NO_SOCKET", NetNS: 4026531840,
			Task: event.Task{PID: 2339, TID: 2340, Comm: "python3", Thread: "worker"},
		},
		{
			Time: t0.Add(time.Microsecond), Direction: event.Receive,
			Local:  netip.MustParseAddrPort("[2001:db8::1]:52574"),
			Remote: netip.MustParseAddrPort("[2001:db8::2]:10245"),
			State:  "ESTABLISHED", Reason: "UNKNOWN", NetNS: 4026532000, Cookie: 4242,
			Task:  event.Task{PID: 0, TID: 0, Comm: "swapper/1", Thread: "swapper/1"},
			Owner: &event.Owner{PID: 4211, TID: 4215, Comm: "java", Alive: false, Source: event.OwnerTuple},
			ZK: &event.ZK{Endpoint: netip.MustParseAddrPort("[2001:db8::2]:10245"), Role: "client",
				ServerVersion: "3.4.14", ServerVersionAt: t0.Add(-12 * time.Second), Mode: "follower", Session: "0x100000abc",
				ClientPID: 4211, ClientRuntime: "java", ClientLibrary: "Apache ZooKeeper Java client", ClientVersion: "3.4.5"},
			Verdict: &event.Verdict{Code: event.VerdictKnownBug, Situation: "UNREAD_DATA", Text: `client library 3.4.5 "is" older than 3.4.6`,
				Sender: &event.Sender{Local: netip.MustParseAddrPort("[2001:db8::2]:10245"), Reason: "TCP_ABORT_ON_CLOSE",
					Owner: &event.Owner{PID: 4000, Comm: "java", Alive: true, Source: event.OwnerSocket}}},
		},
		{
			Time: t0.Add(2 * time.Microsecond), Direction: event.Send,
			Local:  netip.MustParseAddrPort("127.0.0.1:2181"),
			Remote: netip.MustParseAddrPort("127.0.0.1:50000"),
			State:  "CLOSE", Reason: "TCP_ABORT_ON_CLOSE", NetNS: 4026531840,
			Task:  event.Task{PID: 77, TID: 78, Comm: "evil\x01\"name\xff", Thread: "t"},
			Owner: &event.Owner{PID: 77, Comm: "evil\x01\"name\xff", Alive: true, Source: event.OwnerSocket},
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
	if len(s.remote.m) > maxKeys {
		t.Fatalf("remote breakdown grew to %d keys", len(s.remote.m))
	}
	if s.remote.other != 2*maxKeys {
		t.Fatalf("other = %d, want %d", s.remote.other, 2*maxKeys)
	}
	if rows := s.remote.top(1, addrPortName); rows[0].Key != other || rows[0].Count != 2*maxKeys {
		t.Fatalf("top row %+v, want other", rows[0])
	}
}
