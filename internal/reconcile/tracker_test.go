package reconcile

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/netns"
)

// fakeProc is a /proc with one process per namespace; a namespace's inode
// is that of the process's ns/net file.
type fakeProc struct {
	t    *testing.T
	root string
}

func (f fakeProc) netns(pid int, outRsts uint64) uint32 {
	dir := filepath.Join(f.root, fmt.Sprint(pid))
	for _, d := range []string{"ns", "net"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			f.t.Fatal(err)
		}
	}
	nsFile := filepath.Join(dir, "ns", "net")
	if _, err := os.Stat(nsFile); err != nil {
		os.WriteFile(nsFile, nil, 0o644)
	}
	f.set(pid, outRsts)
	var st syscall.Stat_t
	if err := syscall.Stat(nsFile, &st); err != nil {
		f.t.Fatal(err)
	}
	return uint32(st.Ino)
}

func (f fakeProc) set(pid int, outRsts uint64) {
	dir := filepath.Join(f.root, fmt.Sprint(pid), "net")
	snmp := fmt.Sprintf("Tcp: MaxConn OutRsts\nTcp: -1 %d\n", outRsts)
	netstat := "TcpExt: TCPAbortOnClose\nTcpExt: 0\n"
	os.WriteFile(filepath.Join(dir, "snmp"), []byte(snmp), 0o644)
	os.WriteFile(filepath.Join(dir, "netstat"), []byte(netstat), 0o644)
}

func ev(dir event.Direction, ns uint32, sender *event.Sender) *event.Event {
	return &event.Event{Direction: dir, NetNS: ns, Sender: sender,
		Local: netip.MustParseAddrPort("192.0.2.1:1"), Remote: netip.MustParseAddrPort("192.0.2.2:2")}
}

func TestTrackerReport(t *testing.T) {
	f := fakeProc{t, t.TempDir()}
	a := f.netns(100, 1000)
	b := f.netns(200, 50)
	quiet := f.netns(300, 7)
	tr := NewTracker(NewKernel(netns.NewAt(f.root, t.TempDir())), 0, "")
	tr.Start()

	f.set(100, 1003) // three sent by the TCP stack in a, all traced
	f.set(200, 52)   // two in b, one traced
	for range 3 {
		tr.Enrich(context.Background(), ev(event.Send, a, nil))
	}
	tr.Enrich(context.Background(), ev(event.Send, b, nil))
	tr.Enrich(context.Background(), ev(event.Send, b, &event.Sender{Class: event.SenderNetfilter}))
	tr.Enrich(context.Background(), ev(event.Receive, a, &event.Sender{Class: event.SenderUnknown, Inferred: true}))
	skip := tr.CountSkipped(func(*event.Event) bool { return true })
	skip(ev(event.Send, b, nil)) // rstwatch's own probe: counted, not shown
	f.netns(400, 5)              // made during the trace

	r := tr.Report()
	got := map[uint32]Row{}
	for _, row := range r.Rows {
		got[row.NetNS] = row
	}
	if _, ok := got[quiet]; ok {
		t.Errorf("a namespace where nothing happened has a row: %+v", got[quiet])
	}
	if row := got[a]; row.Kernel == nil || row.Kernel.OutRsts != 3 || row.Traced != 3 {
		t.Errorf("a: %+v", row)
	}
	if row := got[b]; row.Kernel == nil || row.Kernel.OutRsts != 2 || row.Traced != 2 || row.Others[event.SenderNetfilter] != 1 {
		t.Errorf("b: %+v kernel %+v", row, row.Kernel)
	}
	if r.Unexplained != 1 {
		t.Errorf("unexplained %d", r.Unexplained)
	}
	text := r.Text()
	for _, want := range []string{
		"kernel counted 10 resets sent, 5 traced", // the new namespace's 5 since it was made
		"(kernel: since the namespace was made)",
		"sent by others, seen on the wire: netfilter 1",
		"1 received resets not sent by the TCP stack",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
	if b, err := r.MarshalJSON(); err != nil || !strings.Contains(string(b), `"received_not_from_tcp_stack":1`) {
		t.Errorf("json %s %v", b, err)
	}
}
