//go:build linux

// Package smoketest checks that a kernel (the host's or a guest booted by
// kernels/run.sh) offers what rstwatch's kernel tests rely on, and records
// which BPF attach methods see TCP resets there. It proves the harness
// itself, independent of the tracer package.
//
// The tests only run when RSTWATCH_KERNEL_TEST=1, because they load BPF
// programs and need root; a plain `go test ./...` skips them.
package smoketest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/rstwatch/rstwatch/internal/testenv"
	"golang.org/x/sys/unix"
)

func requireKernelTest(t *testing.T) {
	t.Helper()
	if os.Getenv("RSTWATCH_KERNEL_TEST") != "1" {
		t.Skip("set RSTWATCH_KERNEL_TEST=1 (kernels/run.sh does) to run kernel tests")
	}
}

// requireBPF skips when BPF cannot be used, unless RSTWATCH_REQUIRE_BPF=1
// turns that into a failure so a broken test VM cannot pass silently.
func requireBPF(t *testing.T) {
	t.Helper()
	requireKernelTest(t)
	testenv.RequireBPF(t)
}

func kernelRelease(t *testing.T) string {
	t.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatalf("uname: %v", err)
	}
	return unix.ByteSliceToString(uts.Release[:])
}

func TestKernelBasics(t *testing.T) {
	requireKernelTest(t)
	t.Logf("kernel release: %s", kernelRelease(t))

	st, err := os.Stat("/sys/kernel/btf/vmlinux")
	if err != nil {
		t.Fatalf("kernel BTF missing (CONFIG_DEBUG_INFO_BTF): %v", err)
	}
	t.Logf("/sys/kernel/btf/vmlinux: %d bytes", st.Size())

	for _, f := range []string{
		"/proc/sys/kernel/unprivileged_bpf_disabled",
		"/proc/sys/net/core/bpf_jit_enable",
	} {
		if b, err := os.ReadFile(f); err == nil {
			t.Logf("%s = %s", f, strings.TrimSpace(string(b)))
		}
	}
}

func tracefsDir(t *testing.T) string {
	t.Helper()
	for _, d := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(d, "events")); err == nil {
			return d
		}
	}
	t.Fatal("tracefs is not mounted at /sys/kernel/tracing or /sys/kernel/debug/tracing")
	return ""
}

func TestResetTracepointFormats(t *testing.T) {
	requireBPF(t) // tracefs events are root-only on most systems
	dir := tracefsDir(t)
	for _, ev := range []string{"tcp_send_reset", "tcp_receive_reset"} {
		p := filepath.Join(dir, "events", "tcp", ev, "format")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("tracepoint tcp:%s: %v", ev, err)
			continue
		}
		t.Logf("%s:\n%s", p, b)
	}
}

func TestLoopbackConnRefused(t *testing.T) {
	requireKernelTest(t)
	for _, nw := range networks(t) {
		// A successful connection first shows loopback is up at all, so a
		// refusal below cannot be mistaken for a dead interface.
		ln, err := net.Listen(nw.name, nw.host+":0")
		if err != nil {
			t.Fatalf("%s listen: %v", nw.name, err)
		}
		c, err := net.DialTimeout(nw.name, ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatalf("%s dial open port: %v", nw.name, err)
		}
		c.Close()
		ln.Close()

		err = dialClosedPort(t, nw)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%s dial closed port: got %v, want ECONNREFUSED", nw.name, err)
		}
		t.Logf("%s: closed port refused as expected: %v", nw.name, err)
	}
}

type network struct {
	name, host string
}

func networks(t *testing.T) []network {
	nws := []network{{"tcp4", "127.0.0.1"}}
	if ln, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		ln.Close()
		nws = append(nws, network{"tcp6", "[::1]"})
	} else {
		t.Logf("IPv6 loopback unavailable, testing IPv4 only: %v", err)
	}
	return nws
}

// dialClosedPort connects to a port that was just released, which makes
// the kernel answer the SYN with a RST from tcp_v{4,6}_send_reset without
// any socket (sk == NULL): the case rstwatch most needs to see.
func dialClosedPort(t *testing.T, nw network) error {
	t.Helper()
	ln, err := net.Listen(nw.name, nw.host+":0")
	if err != nil {
		t.Fatalf("%s listen: %v", nw.name, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := net.DialTimeout(nw.name, addr, 5*time.Second)
	if err == nil {
		c.Close()
		return errors.New("connected to a closed port")
	}
	return err
}

// abortConnection has the server close an established connection with
// SO_LINGER=0, which sends a RST from a full socket (tcp_send_active_reset)
// and makes the client receive it (tcp_reset).
func abortConnection(t *testing.T, nw network) {
	t.Helper()
	ln, err := net.Listen(nw.name, nw.host+":0")
	if err != nil {
		t.Fatalf("%s listen: %v", nw.name, err)
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			accepted <- err
			return
		}
		// Waiting for the client's byte guarantees its connect() has
		// completed, so the RST hits an established socket and not the
		// dial itself.
		_ = s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
			accepted <- err
			return
		}
		if err := s.(*net.TCPConn).SetLinger(0); err != nil {
			accepted <- err
			return
		}
		accepted <- s.Close()
	}()
	c, err := net.DialTimeout(nw.name, ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("%s dial: %v", nw.name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatalf("%s client write: %v", nw.name, err)
	}
	if err := <-accepted; err != nil {
		t.Fatalf("%s server abort: %v", nw.name, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s client read after abort: got %v, want ECONNRESET", nw.name, err)
	}
}

// probe is one way of hooking reset handling; the matrix test reports
// which of them load, attach and fire on the running kernel.
type probe struct {
	name   string
	spec   ebpf.ProgramSpec
	attach func(*ebpf.Program) (link.Link, error)
}

func tracepoint(group, event string) probe {
	return probe{
		name: "tracepoint/" + group + "/" + event,
		spec: ebpf.ProgramSpec{Type: ebpf.TracePoint},
		attach: func(p *ebpf.Program) (link.Link, error) {
			return link.Tracepoint(group, event, p, nil)
		},
	}
}

func rawTracepoint(event string) probe {
	return probe{
		name: "raw_tp/" + event,
		spec: ebpf.ProgramSpec{Type: ebpf.RawTracepoint},
		attach: func(p *ebpf.Program) (link.Link, error) {
			return link.AttachRawTracepoint(link.RawTracepointOptions{Name: event, Program: p})
		},
	}
}

func btfTracing(prefix string, at ebpf.AttachType, target string) probe {
	return probe{
		name: prefix + "/" + target,
		spec: ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: at, AttachTo: target},
		attach: func(p *ebpf.Program) (link.Link, error) {
			return link.AttachTracing(link.TracingOptions{Program: p})
		},
	}
}

func kprobe(symbol string) probe {
	return probe{
		name: "kprobe/" + symbol,
		spec: ebpf.ProgramSpec{Type: ebpf.Kprobe},
		attach: func(p *ebpf.Program) (link.Link, error) {
			return link.Kprobe(symbol, p, nil)
		},
	}
}

func kprobeMulti(symbols ...string) probe {
	return probe{
		name: "kprobe.multi/" + strings.Join(symbols, ","),
		spec: ebpf.ProgramSpec{Type: ebpf.Kprobe, AttachType: ebpf.AttachTraceKprobeMulti},
		attach: func(p *ebpf.Program) (link.Link, error) {
			return link.KprobeMulti(p, link.KprobeMultiOptions{Symbols: symbols})
		},
	}
}

// counterInsns increments counters[idx]. Hand-written instructions keep
// the harness free of a clang dependency.
func counterInsns(counters *ebpf.Map, idx uint32) asm.Instructions {
	return asm.Instructions{
		asm.StoreImm(asm.RFP, -4, int64(idx), asm.Word),
		asm.LoadMapPtr(asm.R1, counters.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
}

type probeResult struct {
	status string // "ok" or why it failed
	fired  map[string]uint64
}

func TestBPFResetProbeMatrix(t *testing.T) {
	requireBPF(t)

	probes := []probe{
		tracepoint("tcp", "tcp_send_reset"),
		tracepoint("tcp", "tcp_receive_reset"),
		rawTracepoint("tcp_send_reset"),
		rawTracepoint("tcp_receive_reset"),
		btfTracing("tp_btf", ebpf.AttachTraceRawTp, "tcp_send_reset"),
		btfTracing("tp_btf", ebpf.AttachTraceRawTp, "tcp_receive_reset"),
		kprobe("tcp_v4_send_reset"),
		kprobe("tcp_v6_send_reset"),
		kprobe("tcp_send_active_reset"),
		kprobe("tcp_reset"),
		kprobeMulti("tcp_v4_send_reset", "tcp_v6_send_reset"),
		btfTracing("fentry", ebpf.AttachTraceFEntry, "tcp_v4_send_reset"),
		btfTracing("fentry", ebpf.AttachTraceFEntry, "tcp_v6_send_reset"),
		btfTracing("fentry", ebpf.AttachTraceFEntry, "tcp_send_active_reset"),
		btfTracing("fentry", ebpf.AttachTraceFEntry, "tcp_reset"),
	}

	counters, err := ebpf.NewMap(&ebpf.MapSpec{
		Name:       "rst_counters",
		Type:       ebpf.Array,
		KeySize:    4,
		ValueSize:  8,
		MaxEntries: uint32(len(probes)),
	})
	if err != nil {
		t.Fatalf("creating counter map: %v", err)
	}
	defer counters.Close()

	results := make([]probeResult, len(probes))
	for i, p := range probes {
		spec := p.spec
		spec.Name = fmt.Sprintf("rst_probe_%d", i)
		spec.License = "GPL"
		spec.Instructions = counterInsns(counters, uint32(i))
		prog, err := ebpf.NewProgram(&spec)
		if err != nil {
			results[i].status = "load failed: " + firstLine(err)
			continue
		}
		defer prog.Close()
		l, err := p.attach(prog)
		if err != nil {
			results[i].status = "attach failed: " + firstLine(err)
			continue
		}
		defer l.Close()
		results[i].status = "ok"
		results[i].fired = map[string]uint64{}
	}

	read := func() []uint64 {
		vals := make([]uint64, len(probes))
		for i := range probes {
			if err := counters.Lookup(uint32(i), &vals[i]); err != nil {
				t.Fatalf("reading counter %d: %v", i, err)
			}
		}
		return vals
	}

	type scenario struct {
		name string
		run  func()
	}
	var scenarios []scenario
	for _, nw := range networks(t) {
		scenarios = append(scenarios,
			scenario{nw.name + "-closed-port", func() {
				if err := dialClosedPort(t, nw); !errors.Is(err, syscall.ECONNREFUSED) {
					t.Fatalf("%s closed port: got %v, want ECONNREFUSED", nw.name, err)
				}
			}},
			scenario{nw.name + "-abort", func() { abortConnection(t, nw) }},
		)
	}

	outRsts := map[string]uint64{}
	for _, sc := range scenarios {
		beforeRsts := tcpOutRsts(t)
		before := read()
		sc.run()
		// Reset handling completes inside the syscalls above, but a short
		// pause keeps the count robust against softirq deferral.
		time.Sleep(50 * time.Millisecond)
		after := read()
		outRsts[sc.name] = tcpOutRsts(t) - beforeRsts
		for i := range probes {
			if results[i].fired != nil {
				results[i].fired[sc.name] = after[i] - before[i]
			}
		}
	}

	release := kernelRelease(t)
	var b strings.Builder
	fmt.Fprintf(&b, "reset probe matrix on %s (counts are hits per scenario):\n", release)
	fmt.Fprintf(&b, "  %-52s", "TcpOutRsts (/proc/net/snmp) delta")
	for _, sc := range scenarios {
		fmt.Fprintf(&b, " %s=%d", sc.name, outRsts[sc.name])
	}
	b.WriteString("\n")
	for i, p := range probes {
		fmt.Fprintf(&b, "  %-52s", p.name)
		if results[i].status != "ok" {
			fmt.Fprintf(&b, " %s\n", results[i].status)
			continue
		}
		b.WriteString(" ok:")
		for _, sc := range scenarios {
			fmt.Fprintf(&b, " %s=%d", sc.name, results[i].fired[sc.name])
		}
		b.WriteString("\n")
	}
	t.Log(b.String())

	// Only the behaviour every supported kernel shares is asserted; the
	// rest of the matrix is information for the tracer's design.
	for i, p := range probes {
		switch p.name {
		case "tracepoint/tcp/tcp_send_reset", "tracepoint/tcp/tcp_receive_reset":
			if results[i].status != "ok" {
				t.Errorf("%s: %s", p.name, results[i].status)
			} else if results[i].fired["tcp4-abort"] == 0 {
				t.Errorf("%s did not fire when a connection was aborted", p.name)
			}
		}
	}
	if outRsts["tcp4-closed-port"] == 0 {
		t.Errorf("TcpOutRsts did not grow when connecting to a closed port")
	}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// tcpOutRsts reads the RST counter of the current network namespace from
// /proc/net/snmp, whose "Tcp:" lines are a header row and a value row.
func tcpOutRsts(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/net/snmp")
	if err != nil {
		t.Fatalf("reading /proc/net/snmp: %v", err)
	}
	defer f.Close()
	v, err := parseSNMP(f, "Tcp", "OutRsts")
	if err != nil {
		t.Fatalf("/proc/net/snmp: %v", err)
	}
	return v
}

func parseSNMP(r io.Reader, proto, field string) (uint64, error) {
	var header []string
	s := bufio.NewScanner(r)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 0 || fields[0] != proto+":" {
			continue
		}
		if header == nil {
			header = fields
			continue
		}
		for i, name := range header {
			if name == field && i < len(fields) {
				return strconv.ParseUint(fields[i], 10, 64)
			}
		}
		return 0, fmt.Errorf("no %s field in %s lines", field, proto)
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s lines", proto)
}

func TestParseSNMP(t *testing.T) {
	const in = "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Tcp: RtoAlgorithm ActiveOpens OutRsts InCsumErrors\nTcp: 1 7 42 0\n"
	got, err := parseSNMP(strings.NewReader(in), "Tcp", "OutRsts")
	if err != nil || got != 42 {
		t.Fatalf("parseSNMP = %d, %v; want 42, nil", got, err)
	}
}
