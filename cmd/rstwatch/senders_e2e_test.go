package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/testenv"
)

// Resets the TCP stack never reports (issue #14), end to end on the binary:
// a firewall's reject and forged segments, named by --all-senders, marked
// as not sent by the TCP stack without it, and the kernel's counters set
// against the traced resets. Everything runs in network namespaces of the
// test's own, so that the busy host's traffic cannot be counted.

// peer is a testdata/rstpeer.py process with a name of its own.
type peer struct {
	t    *testing.T
	name string
	pid  int
	in   io.WriteCloser
	out  *bufio.Scanner
}

func startPeer(t *testing.T, name, netns string) *peer {
	t.Helper()
	python := testenv.RequireProgram(t, "python3", "python3", "RSTWATCH_REQUIRE_BPF")
	script, err := filepath.Abs("testdata/rstpeer.py")
	if err != nil {
		t.Fatal(err)
	}
	args := []string{python, script, name}
	if netns != "" {
		args = append([]string{"ip", "netns", "exec", netns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	p := &peer{t: t, name: name, in: in, out: bufio.NewScanner(out)}
	f := p.do("pid")
	p.pid, _ = strconv.Atoi(f[1])
	return p
}

// do sends one command and returns the answer's fields; an answer that is
// not "ok" fails the test unless the caller expects it (try).
func (p *peer) do(format string, args ...any) []string {
	p.t.Helper()
	f := p.try(format, args...)
	if f[0] != "ok" {
		p.t.Fatalf("%s: %s: %v", p.name, fmt.Sprintf(format, args...), f)
	}
	return f
}

func (p *peer) try(format string, args ...any) []string {
	p.t.Helper()
	fmt.Fprintf(p.in, format+"\n", args...)
	if !p.out.Scan() {
		p.t.Fatalf("%s exited on %q", p.name, fmt.Sprintf(format, args...))
	}
	return strings.Fields(p.out.Text())
}

func mustRun(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func netnsInode(t *testing.T, name string) uint32 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

// hosts is a client and a server namespace joined by a veth pair.
type hosts struct {
	client, server     string
	clientNS, serverNS uint32
}

const (
	clientAddr = "192.0.2.1"
	serverAddr = "192.0.2.2"
)

func twoNamespaces(t *testing.T) hosts {
	t.Helper()
	testenv.RequireProgram(t, "ip", "iproute2", "RSTWATCH_REQUIRE_BPF")
	p := fmt.Sprintf("rsnd%d", os.Getpid()%100000)
	h := hosts{client: p + "c", server: p + "s"}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", h.client).Run()
		exec.Command("ip", "netns", "del", h.server).Run()
	})
	mustRun(t, "ip", "netns", "add", h.client)
	mustRun(t, "ip", "netns", "add", h.server)
	mustRun(t, "ip", "link", "add", p+"a", "netns", h.client, "type", "veth", "peer", "name", p+"b", "netns", h.server)
	for _, side := range []struct{ ns, dev, addr, mac, peer, peerMAC string }{
		{h.client, p + "a", clientAddr, "02:00:00:00:01:01", serverAddr, "02:00:00:00:01:02"},
		{h.server, p + "b", serverAddr, "02:00:00:00:01:02", clientAddr, "02:00:00:00:01:01"},
	} {
		mustRun(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
		mustRun(t, "ip", "-n", side.ns, "link", "set", side.dev, "address", side.mac)
		mustRun(t, "ip", "-n", side.ns, "addr", "add", side.addr+"/24", "dev", side.dev)
		mustRun(t, "ip", "-n", side.ns, "link", "set", side.dev, "up")
		// A first packet waiting for ARP would leave from a timer.
		mustRun(t, "ip", "-n", side.ns, "neigh", "replace", side.peer, "lladdr", side.peerMAC, "dev", side.dev, "nud", "permanent")
	}
	h.clientNS, h.serverNS = netnsInode(t, h.client), netnsInode(t, h.server)
	return h
}

// rejectPort makes the server namespace's firewall answer SYNs to port with
// a reset, as `nft add rule … tcp dport P reject with tcp reset` does.
func rejectPort(t *testing.T, h hosts, port int) {
	t.Helper()
	testenv.RequireProgram(t, "nft", "nftables", "RSTWATCH_REQUIRE_BPF")
	rules := fmt.Sprintf("table inet rstwatch_test {\n chain input {\n  type filter hook input priority 0;\n  tcp dport %d reject with tcp reset\n }\n}\n", port)
	cmd := exec.Command("ip", "netns", "exec", h.server, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft: %v: %s", err, out)
	}
}

// ports gives this test process its own ports, so that the --port filter
// keeps other tests' resets on this busy host out.
func testPorts(n int) []int {
	base := 20000 + os.Getpid()%10000
	out := make([]int, n)
	for i := range out {
		out[i] = base + i
	}
	return out
}

func portList(ports ...int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

type senderJSON struct {
	Class    string `json:"class"`
	Detail   string `json:"detail"`
	Hook     string `json:"hook"`
	NetNS    uint32 `json:"netns"`
	Device   string `json:"device"`
	PID      int    `json:"pid"`
	Comm     string `json:"comm"`
	Inferred bool   `json:"inferred"`
}

type endpoint struct {
	Addr string `json:"addr"`
	Port int    `json:"port"`
}

type resetJSON struct {
	Type      string   `json:"type"`
	Direction string   `json:"direction"`
	Local     endpoint `json:"local"`
	Remote    endpoint `json:"remote"`
	NetNS     uint32   `json:"netns"`
	Reason    string   `json:"reason"`
	Task      struct {
		PID  int    `json:"pid"`
		Comm string `json:"comm"`
	} `json:"task"`
	Owner *struct {
		PID  int    `json:"pid"`
		Comm string `json:"comm"`
	} `json:"owner"`
	Sender *senderJSON `json:"sender"`
	// summary
	Lost   uint64 `json:"lost"`
	Missed uint64 `json:"kernel_missed"`
	Kernel *struct {
		NetNS []struct {
			NetNS  uint32 `json:"netns"`
			Kernel *struct {
				OutRsts uint64 `json:"out_rsts"`
			} `json:"kernel"`
			Traced uint64            `json:"traced_sends"`
			Others map[string]uint64 `json:"other_senders"`
		} `json:"netns"`
		Unexplained uint64 `json:"received_not_from_tcp_stack"`
		FromOthers  uint64 `json:"received_from_other_senders"`
	} `json:"kernel"`
}

// traced stops rstwatch and returns its resets and summary.
func traced(t *testing.T, s *started) (resets []resetJSON, summary resetJSON) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // past the pairing's hold time
	if code := s.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, s.stderr)
	}
	sc := bufio.NewScanner(bytes.NewReader(s.stdout.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var r resetJSON
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("not a JSON line: %v: %s", err, sc.Bytes())
		}
		switch r.Type {
		case "reset":
			resets = append(resets, r)
		case "summary":
			summary = r
		}
	}
	if summary.Type != "summary" || summary.Kernel == nil {
		t.Fatalf("no summary with a kernel object:\n%s\nstderr:\n%s", s.stdout, s.stderr)
	}
	return resets, summary
}

func findReset(t *testing.T, resets []resetJSON, dir string, local, remote endpoint) resetJSON {
	t.Helper()
	var found []resetJSON
	for _, r := range resets {
		if r.Direction == dir && r.Local == local && r.Remote == remote {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		b, _ := json.MarshalIndent(resets, "", " ")
		t.Fatalf("%d %s resets %v -> %v, want 1; all:\n%s", len(found), dir, local, remote, b)
	}
	return found[0]
}

// A firewall in the server's namespace rejects the client's SYN with a
// reset. The TCP stack reports no send; the client's socket receives it.
func TestFirewallReset(t *testing.T) {
	testenv.RequireBPF(t)
	h := twoNamespaces(t)
	port := testPorts(1)[0]
	rejectPort(t, h, port)
	srv := endpoint{serverAddr, port}

	// With the packet-level view the sender is named: netfilter, nftables,
	// at the input hook, in the server's namespace.
	t.Run("all-senders", func(t *testing.T) {
		s := start(t, "trace", "-o", "json", "--all-senders", "--port", strconv.Itoa(port), "--zk-discover=false")
		c := startPeer(t, "rstw-client", h.client)
		f := c.try("connect %s %d", serverAddr, port)
		if f[0] != "refused" {
			t.Fatalf("connect through the reject rule: %v", f)
		}
		resets, sum := traced(t, s)
		cli := clientEndpoint(t, resets, srv)
		sent := findReset(t, resets, "send", srv, cli)
		if sent.NetNS != h.serverNS || sent.Sender == nil || sent.Sender.Class != "netfilter" ||
			sent.Sender.Detail != "nftables" || sent.Sender.Hook != "input" || sent.Sender.Inferred ||
			sent.Sender.NetNS != h.serverNS || sent.Owner != nil {
			t.Errorf("sent: %+v sender %+v, want netfilter/nftables/input in netns %d and no owner", sent, sent.Sender, h.serverNS)
		}
		got := findReset(t, resets, "receive", cli, srv)
		if got.NetNS != h.clientNS || got.Owner == nil || got.Owner.PID != c.pid || got.Owner.Comm != "rstw-client" ||
			got.Sender == nil || got.Sender.Class != "netfilter" || got.Sender.Inferred {
			t.Errorf("received: %+v owner %+v sender %+v, want owner %d/rstw-client and sender netfilter", got, got.Owner, got.Sender, c.pid)
		}
		row := kernelRow(t, sum, h.serverNS)
		if row.Others["netfilter"] != 1 || row.Traced != 0 || row.Kernel == nil || row.Kernel.OutRsts != 0 {
			t.Errorf("server namespace: %+v, want no TCP send counted or traced and 1 netfilter send", row)
		}
		if sum.Kernel.FromOthers != 1 {
			t.Errorf("received from other senders: %d, want 1", sum.Kernel.FromOthers)
		}
	})

	// Without it, the client's received reset is marked: its sender's
	// address is on this host, and no TCP stack sent it.
	t.Run("inferred", func(t *testing.T) {
		s := start(t, "trace", "-o", "json", "--port", strconv.Itoa(port), "--zk-discover=false")
		c := startPeer(t, "rstw-client", h.client)
		if f := c.try("connect %s %d", serverAddr, port); f[0] != "refused" {
			t.Fatalf("connect through the reject rule: %v", f)
		}
		resets, sum := traced(t, s)
		if len(resets) != 1 {
			t.Fatalf("%d resets, want the received one only: %+v", len(resets), resets)
		}
		got := resets[0]
		if got.Direction != "receive" || got.Owner == nil || got.Owner.PID != c.pid || got.Sender == nil ||
			!got.Sender.Inferred || got.Sender.Class != "unknown" {
			t.Errorf("received: %+v owner %+v sender %+v, want owner %d and an inferred sender", got, got.Owner, got.Sender, c.pid)
		}
		if sum.Kernel.Unexplained != 1 {
			t.Errorf("received_not_from_tcp_stack %d, want 1", sum.Kernel.Unexplained)
		}
	})
}

// clientEndpoint finds the client's end from the received reset.
func clientEndpoint(t *testing.T, resets []resetJSON, srv endpoint) endpoint {
	t.Helper()
	for _, r := range resets {
		if r.Direction == "receive" && r.Remote == srv {
			return r.Local
		}
	}
	t.Fatalf("no received reset from %v: %+v", srv, resets)
	return endpoint{}
}

func kernelRow(t *testing.T, sum resetJSON, ns uint32) struct {
	NetNS  uint32 `json:"netns"`
	Kernel *struct {
		OutRsts uint64 `json:"out_rsts"`
	} `json:"kernel"`
	Traced uint64            `json:"traced_sends"`
	Others map[string]uint64 `json:"other_senders"`
} {
	t.Helper()
	for _, r := range sum.Kernel.NetNS {
		if r.NetNS == ns {
			return r
		}
	}
	b, _ := json.Marshal(sum.Kernel)
	t.Fatalf("no kernel row for netns %d: %s", ns, b)
	return sum.Kernel.NetNS[0]
}

// A process forges a reset into an established loopback connection between
// two others, on a raw IP socket and on a packet socket: the sender is that
// process, and both ends of the connection are named.
func TestForgedReset(t *testing.T) {
	testenv.RequireBPF(t)
	name := fmt.Sprintf("rsnd%dl", os.Getpid()%100000)
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	// A frame written on a packet socket comes in like one from another
	// host: let a 127.0.0.1 source, an address of this namespace, in (in
	// this namespace only).
	for _, knob := range []string{"route_localnet", "accept_local"} {
		mustRun(t, "ip", "netns", "exec", name, "sh", "-c",
			fmt.Sprintf("echo 1 > /proc/sys/net/ipv4/conf/all/%[1]s && echo 1 > /proc/sys/net/ipv4/conf/lo/%[1]s", knob))
	}
	ns := netnsInode(t, name)

	for _, mode := range []struct{ name, detail string }{{"raw", "raw IP socket"}, {"packet", "packet socket"}} {
		t.Run(mode.name, func(t *testing.T) {
			s := start(t, "trace", "-o", "json", "--all-senders", "--netns", fmt.Sprint(ns), "--zk-discover=false")
			server := startPeer(t, "rstw-server", name)
			client := startPeer(t, "rstw-client", name)
			forger := startPeer(t, "rstw-forger", name)
			sport, _ := strconv.Atoi(server.do("listen 127.0.0.1")[1])
			cport, _ := strconv.Atoi(client.do("connect 127.0.0.1 %d", sport)[1])
			server.do("accept")
			forger.do("sniff")
			client.do("send 1") // carries the sequence number the client expects next
			forger.do("forge %s 127.0.0.1 %d 127.0.0.1 %d", mode.name, sport, cport)
			if f := client.try("waitreset"); f[0] != "reset" {
				t.Fatalf("the client's connection was not reset: %v", f)
			}
			resets, _ := traced(t, s)
			srv, cli := endpoint{"127.0.0.1", sport}, endpoint{"127.0.0.1", cport}

			sent := findReset(t, resets, "send", srv, cli)
			if sent.Sender == nil || sent.Sender.Class != "raw socket" || sent.Sender.Detail != mode.detail ||
				sent.Sender.PID != forger.pid || sent.Sender.Comm != "rstw-forger" {
				t.Errorf("sent: sender %+v, want raw socket (%s) %d/rstw-forger", sent.Sender, mode.detail, forger.pid)
			}
			// The forged source is the server's end: its owner is the
			// connection's server side.
			if sent.Owner == nil || sent.Owner.PID != server.pid || sent.Owner.Comm != "rstw-server" {
				t.Errorf("sent: owner %+v, want %d/rstw-server", sent.Owner, server.pid)
			}
			got := findReset(t, resets, "receive", cli, srv)
			if got.Owner == nil || got.Owner.PID != client.pid || got.Owner.Comm != "rstw-client" ||
				got.Sender == nil || got.Sender.Class != "raw socket" || got.Sender.PID != forger.pid {
				t.Errorf("received: owner %+v sender %+v, want owner %d/rstw-client and sender %d", got.Owner, got.Sender, client.pid, forger.pid)
			}
		})
	}
}

// After real resets of several kinds in namespaces of its own, the traced
// sends equal what the kernel counted there (Tcp OutRsts); the firewall's
// reset is the expected difference: counted by neither, received, and
// marked as not sent by the TCP stack.
func TestReconcileWithKernelCounters(t *testing.T) {
	testenv.RequireBPF(t)
	h := twoNamespaces(t)
	ports := testPorts(4) // closed, linger, unread data, firewall
	rejectPort(t, h, ports[3])
	s := start(t, "trace", "-o", "json", "--port", portList(ports...), "--zk-discover=false")
	server := startPeer(t, "rstw-server", h.server)
	client := startPeer(t, "rstw-client", h.client)

	// 1. A refused connect: the server's TCP stack answers the SYN.
	if f := client.try("connect %s %d", serverAddr, ports[0]); f[0] != "refused" {
		t.Fatalf("connect to a closed port: %v", f)
	}
	// 2. A linger-0 close: the client's TCP stack aborts.
	server.do("listen %s %d", serverAddr, ports[1])
	client.do("connect %s %d", serverAddr, ports[1])
	server.do("accept")
	client.do("linger0")
	client.do("close")
	// 3. A close with unread data: the server's TCP stack aborts.
	server2 := startPeer(t, "rstw-server2", h.server)
	server2.do("listen %s %d", serverAddr, ports[2])
	client2 := startPeer(t, "rstw-client2", h.client)
	client2.do("connect %s %d", serverAddr, ports[2])
	server2.do("accept")
	client2.do("send 100")
	time.Sleep(50 * time.Millisecond)
	server2.do("close")
	// 4. The firewall.
	client3 := startPeer(t, "rstw-client3", h.client)
	if f := client3.try("connect %s %d", serverAddr, ports[3]); f[0] != "refused" {
		t.Fatalf("connect through the reject rule: %v", f)
	}

	_, sum := traced(t, s)
	for _, c := range []struct {
		ns   uint32
		want uint64
	}{{h.serverNS, 2}, {h.clientNS, 1}} {
		row := kernelRow(t, sum, c.ns)
		if row.Kernel == nil || row.Kernel.OutRsts != c.want || row.Traced != c.want {
			t.Errorf("netns %d: kernel %+v traced %d, want both %d (records lost: %d, program runs the kernel skipped: %d)",
				c.ns, row.Kernel, row.Traced, c.want, sum.Lost, sum.Missed)
		}
	}
	if sum.Kernel.Unexplained != 1 {
		t.Errorf("received_not_from_tcp_stack %d, want 1 (the firewall's)", sum.Kernel.Unexplained)
	}
}

// serve --all-senders counts the firewall's reset by its sender, and
// exports the server namespace's own counters beside it.
func TestServeAllSenders(t *testing.T) {
	testenv.RequireBPF(t)
	h := twoNamespaces(t)
	port := testPorts(1)[0]
	rejectPort(t, h, port)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := start(t, "serve", "--all-senders", "--metrics-addr", addr, "--zk-discover=false")
	c := startPeer(t, "rstw-client", h.client)
	if f := c.try("connect %s %d", serverAddr, port); f[0] != "refused" {
		t.Fatalf("connect through the reject rule: %v", f)
	}
	// A refused connect inside the client's namespace: its TCP stack sends
	// the reset, traced and counted by the kernel alike.
	if f := c.try("connect 127.0.0.1 %d", port); f[0] != "refused" {
		t.Fatalf("connect to a closed port: %v", f)
	}
	want := []string{
		`rstwatch_resets_other_senders_total{detail="nftables",hook="input",sender="netfilter",sender_comm=""} 1`,
		fmt.Sprintf(`rstwatch_kernel_tcp_out_rsts_total{netns="%d"} 0`, h.serverNS),
		fmt.Sprintf(`rstwatch_kernel_tcp_out_rsts_total{netns="%d"} 1`, h.clientNS),
		// Every reset the kernel counted as sent was traced, per namespace
		// (the firewall's is not the TCP stack's: OutRsts does not count it).
		fmt.Sprintf(`rstwatch_kernel_resets_untraced{netns="%d"} 0`, h.serverNS),
		fmt.Sprintf(`rstwatch_kernel_resets_untraced{netns="%d"} 0`, h.clientNS),
	}
	var body string
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(body, w)
			}
			if ok {
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %s", w)
		}
	}
	if code := s.stop(t, syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, s.stderr)
	}
}
