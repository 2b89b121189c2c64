package tracer

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"
	"github.com/rstwatch/rstwatch/internal/event"
)

// fakeSource replays records, then reports deadlines, like a ring buffer
// that is empty.
type fakeSource struct {
	records   [][]byte
	deadlines int
	closed    bool
	onEmpty   func()
	// future counts passes that would have blocked (a deadline ahead).
	future int
}

func (f *fakeSource) SetDeadline(d time.Time) {
	if d.After(time.Now()) {
		f.future++
	}
}
func (f *fakeSource) Close() error { f.closed = true; return nil }
func (f *fakeSource) ReadInto(r *ringbuf.Record) error {
	if len(f.records) == 0 {
		f.deadlines++
		if f.onEmpty != nil {
			f.onEmpty()
		}
		return os.ErrDeadlineExceeded
	}
	r.RawSample = f.records[0]
	f.records = f.records[1:]
	return nil
}

func rawEvent(e rstwatchEvent) []byte {
	b := make([]byte, unsafe.Sizeof(e))
	*(*rstwatchEvent)(unsafe.Pointer(&b[0])) = e
	return b
}

func comm(s string) (c [16]int8) {
	for i := range min(len(s), 15) {
		c[i] = int8(s[i])
	}
	return c
}

func testRecord(lport uint16) rstwatchEvent {
	return rstwatchEvent{
		Kind: uint8(rstwatchRecordKindRECORD_RESET), TimeNs: 1000, TaskCgroup: 7, OwnerCgroup: 8, Family: afInet, Lport: lport, Rport: 1, Reason: 1,
		Direction: 1, State: 0, Laddr: [16]uint8{127, 0, 0, 1}, Raddr: [16]uint8{127, 0, 0, 1},
		TaskPid: 10, TaskTid: 11, TaskComm: comm("client"), TaskThread: comm("worker"),
		OwnerSource: 1, OwnerPid: 20, OwnerComm: comm("server"), OwnerAlive: 1,
	}
}

func TestLoopDeliversThenStopsAndDrains(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := &fakeSource{records: [][]byte{rawEvent(testRecord(1)), rawEvent(testRecord(2)), {1, 2, 3}}}
	var got []uint16
	var passes int
	lostCalls := []uint64{}
	lost := uint64(0)
	src.onEmpty = func() {
		// Records arrive after the stop: the final pass must still take them.
		if src.deadlines == 2 {
			lost = 7
			src.records = append(src.records, rawEvent(testRecord(3)))
			cancel()
		}
	}
	var warned int
	l := &loop{
		src: src, dec: newDecoder(reasonNames{"NOT_SPECIFIED", "NO_SOCKET"}, clockOffset{}),
		interval: time.Millisecond,
		cb: Callbacks{
			Event:    func(e *event.Event) { got = append(got, e.Local.Port()) },
			Lost:     func(n uint64) { lostCalls = append(lostCalls, n) },
			PassDone: func() { passes++ },
		},
		stats: func() (uint64, error) { return lost, nil },
		log:   func(string, ...any) { warned++ },
	}
	if err := l.run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2] != 3 {
		t.Fatalf("delivered ports %v, want [1 2 3]", got)
	}
	if warned != 1 {
		t.Fatalf("malformed record warnings = %d, want 1", warned)
	}
	if len(lostCalls) != 1 || lostCalls[0] != 7 {
		t.Fatalf("lost calls %v, want [7]", lostCalls)
	}
	if passes < 2 {
		t.Fatalf("PassDone called %d times", passes)
	}
}

// While every pass finds a few records the reader waits on a timer and
// drains without blocking; a pass that found nothing, or more than an
// eighth of the ring, waits in the ring buffer (where the kernel can wake
// it early).
func TestLoopWaitsOnATimerWhileRecordsCome(t *testing.T) {
	rec := rawEvent(testRecord(1))
	ctx, cancel := context.WithCancel(context.Background())
	src := &fakeSource{records: [][]byte{rec}}
	script := []int{1, 1, 0, 40, 0} // records that arrive for passes 2, 3, ...
	src.onEmpty = func() {
		if src.deadlines > len(script) {
			cancel()
			return
		}
		for range script[src.deadlines-1] {
			src.records = append(src.records, rec)
		}
	}
	var blocking []bool
	l := &loop{src: src, dec: newDecoder(nil, clockOffset{}), interval: time.Millisecond,
		ring: 32 * (len(rec) + ringRecordHeader), // an eighth: 4 records
		cb:   Callbacks{PassDone: func() { blocking = append(blocking, src.future > 0); src.future = 0 }},
		log:  func(string, ...any) {}}
	if err := l.run(ctx); err != nil {
		t.Fatal(err)
	}
	// Pass 1 blocks (nothing read before it); 2, 3 and 4 follow a pass
	// that read one record; 5 follows an empty pass, 6 one that read 40
	// records (more than an eighth); the last, after the cancel, drains.
	want := []bool{true, false, false, false, true, true, false}
	if fmt.Sprint(blocking[:min(len(blocking), len(want))]) != fmt.Sprint(want) {
		t.Fatalf("blocking waits per pass %v, want %v", blocking, want)
	}
	for _, c := range []struct {
		read int
		want bool
	}{{0, false}, {1, true}, {l.ring / 8, true}, {l.ring/8 + 1, false}} {
		if got := l.timerWait(c.read); got != c.want {
			t.Errorf("timerWait(%d) = %v, want %v", c.read, got, c.want)
		}
	}
	if (&loop{}).timerWait(100) {
		t.Error("without a ring size the reader must always wait in the ring buffer")
	}
}

func TestLoopReturnsOnClose(t *testing.T) {
	src := &closingSource{}
	l := &loop{src: src, dec: newDecoder(nil, clockOffset{}), interval: time.Millisecond,
		cb: Callbacks{Event: func(*event.Event) {}}, log: func(string, ...any) {}}
	if err := l.run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type closingSource struct{ fakeSource }

func (c *closingSource) ReadInto(*ringbuf.Record) error { return ringbuf.ErrClosed }

func TestLoopReportsReadErrors(t *testing.T) {
	l := &loop{src: &failingSource{}, dec: newDecoder(nil, clockOffset{}), interval: time.Millisecond,
		cb: Callbacks{Event: func(*event.Event) {}}, log: func(string, ...any) {}}
	if err := l.run(context.Background()); err == nil {
		t.Fatal("a read error must end the loop with an error")
	}
}

type failingSource struct{ fakeSource }

func (f *failingSource) ReadInto(*ringbuf.Record) error { return errors.New("boom") }

func TestDecode(t *testing.T) {
	d := newDecoder(reasonNames{"NOT_SPECIFIED", "NO_SOCKET"}, clockOffset{wallMinusMono: 5})
	var ev event.Event
	r := testRecord(80)
	if err := d.decode(rawEvent(r), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Direction != event.Send || ev.Reason != "NO_SOCKET" || ev.State != "" ||
		ev.Local != netip.MustParseAddrPort("127.0.0.1:80") || ev.Task.Comm != "client" || ev.Task.Thread != "worker" ||
		ev.Owner == nil || ev.Owner.Comm != "server" || !ev.Owner.Alive || ev.Owner.Source != event.OwnerSocket ||
		ev.Time.UnixNano() != 1005 || ev.Task.Cgroup != 7 || ev.Owner.Cgroup != 8 {
		t.Fatalf("decoded %+v owner %+v", ev, ev.Owner)
	}

	// A reason number this kernel's enum does not have, and "none".
	r.Reason = 99
	d.decode(rawEvent(r), &ev)
	if ev.Reason != "UNKNOWN" {
		t.Fatalf("reason 99 = %q", ev.Reason)
	}
	r.Reason = 0xffff
	d.decode(rawEvent(r), &ev)
	if ev.Reason != "UNKNOWN" {
		t.Fatalf("reason none = %q", ev.Reason)
	}

	// IPv4 on an IPv6 socket is shown as IPv4.
	r.Family = afInet6
	r.Laddr = [16]uint8{10: 0xff, 11: 0xff, 12: 127, 13: 0, 14: 0, 15: 1}
	r.OwnerSource = 0
	d.decode(rawEvent(r), &ev)
	if ev.Local.Addr() != netip.MustParseAddr("127.0.0.1") || ev.Family() != "ipv4" || ev.Owner != nil {
		t.Fatalf("mapped: %v %s owner %v", ev.Local, ev.Family(), ev.Owner)
	}

	if err := d.decode(make([]byte, 8), &ev); err == nil {
		t.Fatal("short record accepted")
	}
	r.Kind = uint8(rstwatchRecordKindRECORD_CONNECT)
	if err := d.decode(rawEvent(r), &ev); err == nil {
		t.Fatal("a connect record decoded as a reset")
	}
}

func rawConnect(c rstwatchConnectEvent) []byte {
	b := make([]byte, unsafe.Sizeof(c))
	*(*rstwatchConnectEvent)(unsafe.Pointer(&b[0])) = c
	return b
}

func testConnect() rstwatchConnectEvent {
	return rstwatchConnectEvent{
		Kind: uint8(rstwatchRecordKindRECORD_CONNECT), Accepted: 1, Family: afInet6, Lport: 2181, Rport: 40000,
		Netns: 4026531840, Pid: 30, Tid: 31, TimeNs: 2000, Cgroup: 9,
		Laddr: [16]uint8{15: 1}, Raddr: [16]uint8{15: 1}, Comm: comm("java"),
	}
}

func TestDecodeConnect(t *testing.T) {
	d := newDecoder(nil, clockOffset{wallMinusMono: 5})
	c, err := d.decodeConnect(rawConnect(testConnect()))
	if err != nil {
		t.Fatal(err)
	}
	want := event.Connect{
		Time: c.Time, Local: netip.MustParseAddrPort("[::1]:2181"), Remote: netip.MustParseAddrPort("[::1]:40000"),
		NetNS: 4026531840, Accepted: true, PID: 30, TID: 31, Comm: "java", Cgroup: 9,
	}
	if *c != want || c.Time.UnixNano() != 2005 {
		t.Fatalf("decoded %+v, want %+v", *c, want)
	}
	if _, err := d.decodeConnect(rawConnect(testConnect())[:20]); err == nil {
		t.Fatal("short connect record accepted")
	}
}

// Connect records go to Callbacks.Connect, resets to Callbacks.Event, in
// the order the kernel wrote them; either callback may be absent.
func TestLoopSortsRecordKinds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	src := &fakeSource{records: [][]byte{rawConnect(testConnect()), rawEvent(testRecord(1)), rawConnect(testConnect())}}
	src.onEmpty = cancel
	var order []string
	l := &loop{
		src: src, dec: newDecoder(nil, clockOffset{}), interval: time.Millisecond,
		cb: Callbacks{
			Event:   func(e *event.Event) { order = append(order, "reset") },
			Connect: func(c *event.Connect) { order = append(order, "connect "+c.Comm) },
		},
		log: func(string, ...any) { t.Error("unexpected warning") },
	}
	if err := l.run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(order); got != "[connect java reset connect java]" {
		t.Fatalf("delivered %s", got)
	}

	// Only aggregating: no Event callback, connect records still arrive.
	ctx, cancel = context.WithCancel(context.Background())
	src = &fakeSource{records: [][]byte{rawConnect(testConnect())}, onEmpty: cancel}
	var n int
	l = &loop{src: src, dec: newDecoder(nil, clockOffset{}), interval: time.Millisecond,
		cb: Callbacks{Connect: func(*event.Connect) { n++ }}, log: func(string, ...any) {}}
	if err := l.run(ctx); err != nil || n != 1 {
		t.Fatalf("run: %v, %d connects", err, n)
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	d := newDecoder(reasonNames{"NOT_SPECIFIED", "NO_SOCKET"}, clockOffset{})
	raw := rawEvent(testRecord(80))
	var ev event.Event
	d.decode(raw, &ev)
	if n := testing.AllocsPerRun(100, func() { d.decode(raw, &ev) }); n != 0 {
		t.Fatalf("decode allocates %.1f times per event", n)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(rawEvent(testRecord(1)))
	f.Add(rawConnect(testConnect()))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		d := newDecoder(reasonNames{"NOT_SPECIFIED"}, clockOffset{})
		var ev event.Event
		_ = d.decode(raw, &ev)
		_, _ = d.decodeConnect(raw)
	})
}

func BenchmarkDecode(b *testing.B) {
	d := newDecoder(reasonNames{"NOT_SPECIFIED", "NO_SOCKET"}, clockOffset{})
	raw := rawEvent(testRecord(80))
	var ev event.Event
	for b.Loop() {
		d.decode(raw, &ev)
	}
}

// An idle reader backs off to idlePollInterval; a pass that reads records
// brings it back to its configured interval.
func TestLoopBacksOffWhileIdle(t *testing.T) {
	l := &loop{interval: 5 * time.Millisecond}
	cur := l.interval
	var seen []time.Duration
	for range 7 {
		cur = l.next(cur, false)
		seen = append(seen, cur)
	}
	if got := fmt.Sprint(seen); got != "[10ms 20ms 40ms 80ms 100ms 100ms 100ms]" {
		t.Fatalf("idle intervals %s", got)
	}
	if cur = l.next(cur, true); cur != 5*time.Millisecond {
		t.Fatalf("after records: %v, want the configured 5ms", cur)
	}
	// A configured interval above the idle one is kept.
	slow := &loop{interval: 200 * time.Millisecond}
	if got := slow.next(slow.interval, false); got != 200*time.Millisecond {
		t.Fatalf("slow loop idles at %v", got)
	}
}
