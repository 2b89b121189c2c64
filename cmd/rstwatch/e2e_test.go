package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/rstwatch/rstwatch/internal/testbin"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// started is a running rstwatch.
type started struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	stderr *bytes.Buffer
}

// start runs rstwatch with args and waits for its ready file.
func start(t *testing.T, args ...string) *started {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command(testbin.Rstwatch(t), append(args, "--ready-file", ready)...)
	s := &started{cmd: cmd, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(ready); err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("rstwatch not ready after 15 s; stderr:\n%s", s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop signals rstwatch and waits for it, returning its exit code.
func (s *started) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("rstwatch did not exit within 5 s of %v", sig)
	}
	return s.cmd.ProcessState.ExitCode()
}

// refuse connects to a loopback port nobody listens on, n times, and
// returns the port.
func refuse(t *testing.T, n int) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	for range n {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
			t.Fatal("connect to a closed port succeeded")
		}
	}
	return port
}

type jsonLine struct {
	Type      string `json:"type"`
	Direction string `json:"direction"`
	Reason    string `json:"reason"`
	Local     struct {
		Addr string `json:"addr"`
		Port int    `json:"port"`
	} `json:"local"`
	Remote struct {
		Addr string `json:"addr"`
		Port int    `json:"port"`
	} `json:"remote"`
	Task struct {
		PID  int    `json:"pid"`
		Comm string `json:"comm"`
	} `json:"task"`
	Owner *struct {
		PID   int    `json:"pid"`
		Comm  string `json:"comm"`
		Alive bool   `json:"alive"`
	} `json:"owner"`
	Total uint64 `json:"total"`
	Lost  uint64 `json:"lost"`
}

func parseLines(t *testing.T, out []byte) []jsonLine {
	t.Helper()
	var lines []jsonLine
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var l jsonLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %v: %s", err, sc.Bytes())
		}
		lines = append(lines, l)
	}
	return lines
}

// trace --output json, stopped by SIGINT: the events of real resets, then a
// summary that counts them, and exit status 0.
func TestTraceJSONUntilSignal(t *testing.T) {
	testenv.RequireBPF(t)
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			// Only this process's resets: on a busy host others' storms
			// would fill the ring and make the count and "none lost" lie.
			s := start(t, "trace", "--output", "json", "--pid", fmt.Sprint(os.Getpid()))
			port := refuse(t, 3)
			time.Sleep(100 * time.Millisecond)
			if code := s.stop(t, sig); code != 0 {
				t.Fatalf("exit %d after %v; stderr:\n%s", code, sig, s.stderr)
			}
			lines := parseLines(t, s.stdout.Bytes())
			if len(lines) == 0 || lines[len(lines)-1].Type != "summary" {
				t.Fatalf("last line is not the summary: %s", s.stdout)
			}
			var sent, received int
			for _, l := range lines {
				if l.Type != "reset" {
					continue
				}
				if l.Direction == "send" && l.Local.Port == port && l.Reason == "NO_SOCKET" && l.Owner == nil {
					sent++
				}
				if l.Direction == "receive" && l.Remote.Port == port && l.Owner != nil &&
					l.Owner.PID == os.Getpid() && l.Task.PID == os.Getpid() {
					received++
				}
			}
			if sent != 3 || received != 3 {
				t.Fatalf("want 3 sent and 3 received for port %d, got %d and %d:\n%s", port, sent, received, s.stdout)
			}
			if sum := lines[len(lines)-1]; sum.Total < 6 || sum.Lost != 0 {
				t.Fatalf("summary total %d lost %d", sum.Total, sum.Lost)
			}
		})
	}
}

// --port filters in the kernel; --count stops by itself.
func TestTracePortFilterAndCount(t *testing.T) {
	testenv.RequireBPF(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := start(t, "trace", "-o", "json", "--port", fmt.Sprint(port), "--count", "4")
	refuse(t, 1) // another port: filtered out
	for range 3 {
		net.Dial("tcp", ln.Addr().String())
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v; stderr:\n%s", err, s.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("--count 4 did not stop rstwatch")
	}
	var resets int
	for _, l := range parseLines(t, s.stdout.Bytes()) {
		if l.Type == "reset" {
			resets++
			if l.Local.Port != port && l.Remote.Port != port {
				t.Errorf("reset on another port passed the filter: %+v", l)
			}
		}
	}
	if resets != 4 {
		t.Fatalf("%d resets with --count 4", resets)
	}
}

// Table output with a duration: a header, lines, and the summary.
func TestTraceTableDuration(t *testing.T) {
	testenv.RequireBPF(t)
	s := start(t, "trace", "--duration", "1s", "--pid", fmt.Sprint(os.Getpid()))
	port := refuse(t, 1)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v; stderr:\n%s", err, s.stderr)
	}
	out := s.stdout.String()
	if !strings.HasPrefix(out, "TIME ") || !strings.Contains(out, fmt.Sprintf("127.0.0.1:%d ", port)) ||
		!strings.Contains(out, "NO_SOCKET") || !strings.Contains(out, "none lost") {
		t.Fatalf("table output:\n%s", out)
	}
}

func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(testbin.Rstwatch(t), args...).CombinedOutput()
	return string(out), err
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// A connection older than the trace: the kernel never saw its owner
// connect; it names the owner from the open files of every process when
// the trace starts (source seeded).
func TestTraceOwnerOfOlderSocket(t *testing.T) {
	testenv.RequireBPF(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	s := start(t, "trace", "-o", "json", "--port", fmt.Sprint(port))
	c.Write(make([]byte, 100))
	time.Sleep(50 * time.Millisecond)
	srv.Close() // unread data: reset
	time.Sleep(200 * time.Millisecond)
	if code := s.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	var out struct {
		Owner *struct {
			PID    int    `json:"pid"`
			Source string `json:"source"`
		} `json:"owner"`
	}
	var n int
	for _, line := range strings.Split(strings.TrimSpace(s.stdout.String()), "\n") {
		if !strings.Contains(line, `"type":"reset"`) {
			continue
		}
		n++
		json.Unmarshal([]byte(line), &out)
		if out.Owner == nil || out.Owner.PID != os.Getpid() || out.Owner.Source != "seeded" {
			t.Errorf("want owner %d, seeded: %s", os.Getpid(), line)
		}
	}
	if n != 2 {
		t.Fatalf("%d resets, want 2:\n%s", n, s.stdout)
	}
}

// programsOf lists the BPF program ids a process holds, from its fdinfo.
func programsOf(t *testing.T, pid int) []ebpf.ProgramID {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fdinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	var ids []ebpf.ProgramID
	for _, fd := range fds {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				var id uint32
				fmt.Sscan(strings.TrimSpace(v), &id)
				ids = append(ids, ebpf.ProgramID(id))
			}
		}
	}
	return ids
}

// SIGINT in the middle of a reset storm: a prompt exit, the summary
// flushed, and none of its programs left in the kernel.
func TestTraceInterruptedMidStorm(t *testing.T) {
	testenv.RequireBPF(t)
	s := start(t, "trace", "-o", "json")
	held := programsOf(t, s.cmd.Process.Pid)
	if len(held) == 0 {
		t.Fatal("rstwatch holds no BPF programs while tracing")
	}
	port := refuse(t, 0)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		for {
			select {
			case <-stop:
				return
			default:
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
				}
			}
		}
	}()
	time.Sleep(time.Second)
	at := time.Now()
	code := s.stop(t, syscall.SIGINT)
	took := time.Since(at)
	close(stop)
	<-done
	if code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	t.Logf("exited %v after SIGINT mid-storm", took)
	out := strings.TrimSpace(s.stdout.String())
	last := out[strings.LastIndexByte(out, '\n')+1:]
	if !strings.Contains(last, `"type":"summary"`) {
		t.Fatalf("last line is not the summary: %.300s", last)
	}
	for _, id := range held {
		if p, err := ebpf.NewProgramFromID(id); err == nil {
			p.Close()
			t.Errorf("program %d is still loaded after exit", id)
		}
	}
}

// inPrivateMounts runs rstwatch with args in a private mount namespace
// after a shell snippet has changed the mounts there (the host's are never
// touched), and returns its stderr and exit code.
func inPrivateMounts(t *testing.T, setup string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	script := setup + ` && exec "$0" "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, testbin.Rstwatch(t)}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return strings.TrimSpace(stderr.String()), exitCode(err)
}

// Without tracefs mounted: rstwatch mounts it itself (as root) and traces.
func TestTraceWithoutTracefsMounted(t *testing.T) {
	testenv.RequireBPF(t)
	msg, code := inPrivateMounts(t, "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; ! mountpoint -q /sys/kernel/tracing",
		"trace", "--duration", "300ms")
	if code != 0 || !strings.Contains(msg, "mounted tracefs") {
		t.Fatalf("exit %d, want 0 after mounting tracefs:\n%s", code, msg)
	}
}
