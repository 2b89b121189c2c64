package tracer

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/netns"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// The packet-level view loads here, and Close takes it away.
func TestAllSendersLoads(t *testing.T) {
	c := startCollector(t, Config{AllSenders: true})
	if !c.tr.AllSenders() {
		t.Fatalf("packet-level view not running: %v", c.tr.Degraded())
	}
	if _, ok, err := c.tr.SendersStats(); !ok || err != nil {
		t.Fatalf("stats: %v %v", ok, err)
	}
}

// breakSenders makes the named programs attach to a tracepoint this kernel
// does not have, as on a kernel whose BTF lacks it.
func breakSenders(t *testing.T, progs ...string) {
	orig := loadSendersSpec
	t.Cleanup(func() { loadSendersSpec = orig })
	loadSendersSpec = func() (*ebpf.CollectionSpec, error) {
		spec, err := orig()
		for _, p := range progs {
			if err == nil {
				spec.Programs[p].AttachTo = "net_dev_no_such_tracepoint"
			}
		}
		return spec, err
	}
}

// Without net_dev_start_xmit it runs on net_dev_queue alone and says what
// is then not seen.
func TestAllSendersWithoutXmit(t *testing.T) {
	breakSenders(t, sendersProgRstwatchSendersXmit)
	c := startCollector(t, Config{AllSenders: true})
	if !c.tr.AllSenders() {
		t.Fatalf("not running: %v", c.tr.Degraded())
	}
	found := false
	for _, d := range c.tr.Degraded() {
		found = found || strings.Contains(d, "bypass the queue")
	}
	if !found {
		t.Fatalf("degraded: %q", c.tr.Degraded())
	}
}

// Where its programs cannot load at all, the rest still traces and one line
// says what is not seen.
func TestAllSendersDegrades(t *testing.T) {
	breakSenders(t, sendersProgRstwatchSendersQueue, sendersProgRstwatchSendersXmit)
	c := startCollector(t, Config{AllSenders: true})
	if c.tr.AllSenders() {
		t.Fatal("the packet-level view runs though its program could not load")
	}
	var line string
	for _, d := range c.tr.Degraded() {
		if strings.Contains(d, "--all-senders") {
			line = d
		}
	}
	if !strings.Contains(line, "cannot run here") || !strings.Contains(line, sendersLost) {
		t.Fatalf("degraded: %q", c.tr.Degraded())
	}
	t.Log(line)
}

// rstFrame is an Ethernet frame carrying an IPv4 TCP segment with RST from
// 127.0.0.1:sport to 127.0.0.1:dport (checksums are not checked before the
// driver, where it is seen).
func rstFrame(sport, dport uint16) []byte {
	f := make([]byte, 14+20+20)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	copy(ip[12:], []byte{127, 0, 0, 1})
	copy(ip[16:], []byte{127, 0, 0, 1})
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	tcp[12], tcp[13] = 5<<4, 0x04
	return f
}

// A frame written on a packet socket is seen (at net_dev_start_xmit, or at
// the queue where that hook is missing), with this process as its sender:
// the kernel found the socket among the sending task's open files.
func TestAllSendersPacketSocket(t *testing.T) {
	testenv.RequireBPF(t)
	for _, withXmit := range []bool{true, false} {
		t.Run(fmt.Sprintf("start_xmit=%v", withXmit), func(t *testing.T) {
			if !withXmit {
				breakSenders(t, sendersProgRstwatchSendersXmit)
			}
			name := fmt.Sprintf("rstwpk%d", os.Getpid()%100000)
			run(t, "ip", "netns", "add", name)
			t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
			run(t, "ip", "-n", name, "link", "set", "lo", "up")
			ino := nsInode(t, name)
			c := startCollector(t, Config{AllSenders: true, NetNS: ino})
			if !c.tr.AllSenders() {
				t.Fatalf("not running: %v", c.tr.Degraded())
			}
			err := netns.In("/run/netns/"+name, func() error {
				fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_IP)))
				if err != nil {
					return err
				}
				defer unix.Close(fd)
				lo, err := net.InterfaceByName("lo")
				if err != nil {
					return err
				}
				return unix.Sendto(fd, rstFrame(4242, 4343), 0, &unix.SockaddrLinklayer{Ifindex: lo.Index, Protocol: htons(unix.ETH_P_IP)})
			})
			if err != nil {
				t.Fatal(err)
			}
			e := c.find(t, event.Send, netip.MustParseAddrPort("127.0.0.1:4242"), netip.MustParseAddrPort("127.0.0.1:4343"))
			want := event.Sender{Class: event.SenderRawSocket, Detail: "packet socket", NetNS: ino, Device: "lo",
				PID: uint32(os.Getpid()), Comm: e.Task.Comm, Socket: e.Sender.Socket}
			if e.Sender == nil || *e.Sender != want || e.Sender.Socket == 0 || e.NetNS != ino {
				t.Fatalf("sender %+v, want %+v", e.Sender, want)
			}
		})
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// The TCP stack's own resets are left in the kernel, unrecorded: refused
// connects (IPv4 with the control socket, IPv6 without a socket, told by
// tcp_send_reset's mark) and aborts, on both families.
func TestAllSendersLeavesTheTCPStack(t *testing.T) {
	testenv.RequireBPF(t)
	name := fmt.Sprintf("rstwst%d", os.Getpid()%100000)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	ino := nsInode(t, name)
	c := startCollector(t, Config{AllSenders: true, NetNS: ino})
	err := netns.In("/run/netns/"+name, func() error {
		for _, addr := range []string{"127.0.0.1", "[::1]"} {
			if conn, err := net.Dial("tcp", addr+":9"); err == nil {
				conn.Close()
				return fmt.Errorf("connect to %s:9 succeeded", addr)
			}
			ln, err := net.Listen("tcp", addr+":0")
			if err != nil {
				return err
			}
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				return err
			}
			peer, err := ln.Accept()
			if err != nil {
				return err
			}
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
			peer.Close()
			ln.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	st, _, err := c.tr.SendersStats()
	// Before 6.9 tcp:tcp_send_reset does not fire for a reset sent without
	// a socket, and IPv6's leaves with none: the kernel side cannot tell
	// that one refusal (of four resets) and records it, and user space
	// drops it by its kernel stack (no event with a sender, checked below).
	// Where the tracepoint carries reasons (6.10+) it fires for all.
	want := uint64(1)
	if c.tr.ReportsReasons() {
		want = 0
	}
	if err != nil || st.Emitted > want {
		t.Errorf("the packet-level view recorded %d packets (%v), want at most %d: the kernel should leave the TCP stack's", st.Emitted, err, want)
	}
	c.stop(t)
	sends := 0
	for _, e := range c.events {
		if e.Sender != nil {
			t.Errorf("the TCP stack's reset reported with a sender: %+v %+v", e, e.Sender)
		}
		if e.Direction == event.Send {
			sends++
		}
	}
	if sends != 4 {
		t.Errorf("%d sends traced, want 4 (two refused, two aborted)", sends)
	}
}
