package tracer

import (
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"github.com/rstwatch/rstwatch/internal/event"
)

func rawSender(e sendersSenderEvent) []byte {
	b := make([]byte, unsafe.Sizeof(e))
	*(*sendersSenderEvent)(unsafe.Pointer(&b[0])) = e
	return b
}

// A forged reset on loopback: the raw socket's send, recorded with the
// task that held the socket, then the victim's received reset, which is
// tagged with the same sender because the ring is read before it goes on.
func TestSendersReaderTagsTheReceive(t *testing.T) {
	src := &fakeSource{records: [][]byte{rawSender(sendersSenderEvent{
		TimeNs: 500, Netns: 42, Ifindex: 1, Ifname: comm("lo"), Family: afInet,
		Saddr: [16]uint8{127, 0, 0, 1}, Daddr: [16]uint8{127, 0, 0, 1}, Sport: 8080, Dport: 50000,
		Sock: uint8(sendersSenderSockSENDER_SOCK_RAW), Hook: uint8(sendersSenderHookSENDER_HOOK_QUEUE),
		SkInode: 777, TaskHolds: 1, TaskPid: 30, TaskTid: 31, TaskComm: comm("forger"), TaskThread: comm("forger"),
	})}}
	var out []event.Event
	r := &sendersReader{
		src:    src,
		avail:  func() int { return len(src.records) },
		dec:    newSenderDecoder(clockOffset{}, newSymbolizer("/nonexistent", "/nonexistent"), nil),
		cb:     Callbacks{Event: func(e *event.Event) { out = append(out, *e) }},
		stats:  func() (uint64, error) { return 0, nil },
		log:    func(string, ...any) {},
		recent: map[flowKey]recentSend{},
		now:    time.Now,
	}
	recv := event.Event{Direction: event.Receive,
		Local: netip.MustParseAddrPort("127.0.0.1:50000"), Remote: netip.MustParseAddrPort("127.0.0.1:8080")}
	r.wrap().Event(&recv)

	if len(out) != 2 {
		t.Fatalf("%d events, want the send then the receive: %+v", len(out), out)
	}
	send, got := out[0], out[1]
	if send.Direction != event.Send || send.Local != recv.Remote || send.Remote != recv.Local || send.NetNS != 42 {
		t.Errorf("send %+v", send)
	}
	want := event.Sender{Class: event.SenderRawSocket, Detail: "raw IP socket", NetNS: 42, Device: "lo", PID: 30, Comm: "forger", Socket: 777}
	if send.Sender == nil || *send.Sender != want {
		t.Errorf("sender %+v, want %+v", send.Sender, want)
	}
	if got.Sender != send.Sender {
		t.Errorf("the receive is not tagged with the send's sender: %+v", got.Sender)
	}
}

// A packet whose socket the task did not hold names no process: the
// kernel could not tell who sent it.
func TestSenderDecodeWithoutHolder(t *testing.T) {
	d := newSenderDecoder(clockOffset{}, newSymbolizer("/nonexistent", "/nonexistent"), nil)
	e, err := d.decode(rawSender(sendersSenderEvent{Family: afInet, Sock: uint8(sendersSenderSockSENDER_SOCK_PACKET),
		TaskPid: 5, TaskComm: comm("ksoftirqd/0"), SkInode: 9}))
	if err != nil {
		t.Fatal(err)
	}
	if e.Sender.PID != 0 || e.Sender.Comm != "" || e.Sender.Detail != "packet socket" || e.Sender.Socket != 9 {
		t.Fatalf("sender %+v", e.Sender)
	}
	if _, err := d.decode(make([]byte, 10)); err == nil {
		t.Fatal("a short record decoded")
	}
	// No socket and no symbols: unknown.
	e, _ = d.decode(rawSender(sendersSenderEvent{Family: afInet, Sock: uint8(sendersSenderSockSENDER_SOCK_NONE), StackBytes: 16, Stack: [32]uint64{1, 2}}))
	if e.Sender.Class != event.SenderUnknown {
		t.Fatalf("sender %+v", e.Sender)
	}
}
