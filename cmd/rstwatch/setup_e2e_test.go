package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/testbin"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// The test binary doubles as helper processes, chosen by this variable.
const helperEnv = "RSTWATCH_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "jvm":
		// Looks like a ZooKeeper server JVM to discovery (its argv says so)
		// until its parent goes away or a minute passes.
		time.Sleep(time.Minute)
		os.Exit(0)
	case "refuse":
		// One refused connect to the port in argv[1], from wherever this
		// process was started (another network namespace).
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+os.Args[1], time.Second)
		if err == nil {
			c.Close()
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testbin.Main(m))
}

// fakeZooKeeper starts a process that ZooKeeper discovery takes for a
// server JVM, whatever else runs on the host: rstwatch logs that it found
// it, which is what once stood in front of fatal sentences.
func fakeZooKeeper(t *testing.T) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "zoo.cfg")
	if err := os.WriteFile(cfg, []byte("clientPort=1\ndataDir=/nonexistent\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(cfg), 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: self, Env: append(os.Environ(), helperEnv+"=jvm"),
		Args: []string{"java", "-cp", "/usr/share/java/zookeeper.jar", "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Discovery must see it: rstwatch itself says so when it can trace.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
		if bytes.Contains(b, []byte("QuorumPeerMain")) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the fake ZooKeeper JVM did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// result is a finished rstwatch run.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func runRstwatch(t *testing.T, prefix []string, args ...string) result {
	t.Helper()
	argv := append(append(prefix, testbin.Rstwatch(t)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return result{exitCode(err), stdout.String(), stderr.String(), time.Since(start)}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not exit within 30 s; stderr:\n%s", args, stderr.String())
	}
	return result{}
}

// oneSentence fails t unless stderr is exactly one line starting with
// "rstwatch: " and containing every fragment.
func oneSentence(t *testing.T, r result, code int, fragments ...string) {
	t.Helper()
	msg := strings.TrimSuffix(r.stderr, "\n")
	if r.code != code || strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "rstwatch: ") {
		t.Fatalf("want exit %d and one sentence on stderr, got exit %d:\n%s", code, r.code, r.stderr)
	}
	for _, f := range fragments {
		if !strings.Contains(msg, f) {
			t.Errorf("the sentence does not say %q:\n%s", f, msg)
		}
	}
	for _, bad := range []string{"strconv", "level=", "invalid syntax", "parsing"} {
		if strings.Contains(msg, bad) {
			t.Errorf("the sentence has Go's words (%q):\n%s", bad, msg)
		}
	}
}

// An unprivileged user's setpriv prefix with exactly these capabilities.
func asNobody(t *testing.T, caps ...string) []string {
	t.Helper()
	testenv.RequireBPF(t) // setpriv needs root to switch users
	testenv.RequireProgram(t, "setpriv", "util-linux", "RSTWATCH_REQUIRE_BPF")
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	return []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set}
}

// Every usage error: exit 2, one plain sentence naming the flag, before
// anything is loaded, discovered or probed (a ZooKeeper JVM runs, and no
// discovery line comes out), quickly.
func TestUsageErrors(t *testing.T) {
	if os.Geteuid() == 0 {
		fakeZooKeeper(t)
	}
	pidMax := 4194304
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		fmt.Sscan(string(b), &pidMax)
	}
	noPID := pidMax - 1
	for ; noPID > 1; noPID-- {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", noPID)); err != nil {
			break
		}
	}
	thread := threadOfThisProcess(t)
	for _, tc := range []struct {
		args []string
		says []string
	}{
		{[]string{"--duration", "-5s"}, []string{"--duration -5s", "positive duration"}},
		{[]string{"trace", "--duration", "5"}, []string{"--duration 5"}},
		{[]string{"--pid", "-1"}, []string{"--pid -1", "process id"}},
		{[]string{"--pid", "0"}, []string{"--pid 0", "greater than 0"}},
		{[]string{"--pid", fmt.Sprint(noPID)}, []string{fmt.Sprintf("--pid %d", noPID), "no such process"}},
		{[]string{"--pid", fmt.Sprint(thread)}, []string{"thread of process", fmt.Sprint(os.Getpid())}},
		{[]string{"--count", "-3"}, []string{"--count -3", "1 or more"}},
		{[]string{"--count", "0"}, []string{"--count 0"}},
		{[]string{"--netns", "abc"}, []string{"--netns abc", "ip netns"}},
		{[]string{"--netns", "123"}, []string{"--netns 123", "no network namespace"}},
		{[]string{"--netns", "/etc/hostname"}, []string{"not a namespace file"}},
		{[]string{"--ring-buffer-size", "3M"}, []string{"--ring-buffer-size 3M", "power of two"}},
		{[]string{"--ring-buffer-size", "4G"}, []string{"--ring-buffer-size 4G", "2G"}},
		{[]string{"--ring-buffer-size", "lots"}, []string{"--ring-buffer-size lots"}},
		{[]string{"--owner-table-size", "0"}, []string{"--owner-table-size 0"}},
		{[]string{"--output", "xml"}, []string{"--output xml", "table or json"}},
		{[]string{"--port", "99999"}, []string{"--port 99999", "1 to 65535"}},
		{[]string{"--port", ","}, []string{"--port", "no port"}},
		{[]string{"--zk-port", "0"}, []string{"--zk-port 0"}},
		{[]string{"--zk", "nonsense"}, []string{"--zk nonsense", "host:port"}},
		{[]string{"--zk-admin-port", "99999"}, []string{"--zk-admin-port 99999", "0 to 65535"}},
		{[]string{"--zk-probe-interval", "0s"}, []string{"--zk-probe-interval"}},
		{[]string{"--debug=maybe"}, []string{"--debug maybe", "true or false"}},
		{[]string{"--durtion", "5s"}, []string{"unknown flag --durtion", "did you mean --duration?"}},
		{[]string{"-x"}, []string{"unknown flag -x"}},
		{[]string{"--pid"}, []string{"--pid needs a value"}},
		{[]string{"trace", "extra"}, []string{"takes no arguments"}},
		{[]string{"trcae"}, []string{`unknown command "trcae"`, "did you mean trace?"}},
		{[]string{"2181"}, []string{`unknown command "2181"`, "--port 2181"}},
		{[]string{"serve", "--metrics-addr", "garbage"}, []string{"--metrics-addr garbage", "host:port"}},
		{[]string{"serve", "--metrics-addr", "127.0.0.1:99999"}, []string{"--metrics-addr 127.0.0.1:99999"}},
		{[]string{"serve", "--max-series", "-1"}, []string{"--max-series -1"}},
		{[]string{"serve", "--max-owner-comms", "0"}, []string{"--max-owner-comms 0"}},
		{[]string{"serve", "--events-file-max-size", "1"}, []string{"--events-file-max-size 1", "4K"}},
		{[]string{"serve", "--log-format", "yaml"}, []string{"--log-format yaml", "text or json"}},
		{[]string{"serve", "--ring-buffer-size", "3M"}, []string{"--ring-buffer-size 3M"}},
		{[]string{"doctor", "now"}, []string{"doctor takes no arguments"}},
		{[]string{"doctor", "--fix"}, []string{"unknown flag --fix"}},
		{[]string{"version", "--json"}, []string{"unknown flag --json"}},
		{[]string{"help", "nope"}, []string{"help nope", "no such command"}},
		{[]string{"zk"}, []string{"zk needs a subcommand", "probe"}},
		{[]string{"zk", "prob"}, []string{"zk prob", "probe"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runRstwatch(t, nil, tc.args...)
			oneSentence(t, r, 2, tc.says...)
			if r.stdout != "" {
				t.Errorf("stdout is not empty:\n%s", r.stdout)
			}
			if r.took > 3*time.Second {
				t.Errorf("took %v: a usage error must come before any work", r.took)
			}
		})
	}
}

// threadOfThisProcess returns the id of a thread of this process that is
// not its leader (Go runs several).
func threadOfThisProcess(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		var tid int
		fmt.Sscan(e.Name(), &tid)
		if tid != os.Getpid() {
			return tid
		}
	}
	t.Skip("no second thread")
	return 0
}

// Help goes to stdout with exit 0: the commands and trace's flags for
// `rstwatch --help`, -h and `rstwatch help`; each command's own.
func TestHelp(t *testing.T) {
	top := []string{"Usage:", "rstwatch serve", "rstwatch doctor", "rstwatch zk probe", "rstwatch version",
		"Flags of trace", "--duration", "--netns", "--zk-port", "Examples:"}
	for _, tc := range []struct {
		args []string
		says []string
		not  []string
	}{
		{[]string{"--help"}, top, nil},
		{[]string{"-h"}, top, nil},
		{[]string{"help"}, top, nil},
		{[]string{"trace", "--help"}, []string{"rstwatch trace:", "--duration", "Examples:"}, []string{"rstwatch doctor "}},
		{[]string{"help", "serve"}, []string{"rstwatch serve:", "--metrics-addr", "--max-series"}, nil},
		{[]string{"serve", "-h"}, []string{"rstwatch serve:", "--metrics-addr"}, nil},
		{[]string{"doctor", "--help"}, []string{"rstwatch doctor:", "sudo rstwatch doctor"}, []string{"Flags:"}},
		{[]string{"zk", "--help"}, []string{"probe", "rstwatch zk probe --help"}, nil},
		{[]string{"zk", "probe", "--help"}, []string{"--zk-admin-port", "--timeout"}, nil},
		{[]string{"version", "--help"}, []string{"rstwatch version:"}, []string{"Flags:"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runRstwatch(t, nil, tc.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			for _, s := range tc.says {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("help does not say %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(r.stdout, s) {
					t.Errorf("help says %q:\n%s", s, r.stdout)
				}
			}
		})
	}
}

// version and --version: version, commit, Go, kernel, and the features
// probed here (as root every one has an answer).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runRstwatch(t, nil, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		for _, s := range []string{"rstwatch ", "commit ", "go1.", "kernel ", "BTF", "BPF ring buffer", "reset reasons",
			"tracepoint tcp:tcp_send_reset", "tp_btf", "iter/task_file", "net_dev_queue", "fentry", "cgroup v2 hierarchy"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("%v does not say %q:\n%s", args, s, r.stdout)
			}
		}
		if os.Geteuid() == 0 && strings.Contains(r.stdout, "unknown ") {
			t.Errorf("as root, a feature was left unknown:\n%s", r.stdout)
		}
	}
}

// Setup errors come first and alone: without privileges or BTF, on a host
// where a ZooKeeper server runs, trace and serve print one sentence (no
// discovery line before it) and exit 1.
func TestSetupErrorsComeFirst(t *testing.T) {
	testenv.RequireBPF(t)
	fakeZooKeeper(t)
	for _, cmd := range []string{"trace", "serve"} {
		t.Run(cmd+" without privileges", func(t *testing.T) {
			r := runRstwatch(t, asNobody(t), cmd, "--metrics-addr", "127.0.0.1:0")
			if cmd == "trace" {
				r = runRstwatch(t, asNobody(t), cmd, "--duration", "1s")
			}
			oneSentence(t, r, 1, "uid 65534 lacks", "CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH", "root")
			if strings.Contains(r.stderr, "CAP_SYS_RESOURCE") {
				t.Errorf("CAP_SYS_RESOURCE is not needed on this kernel:\n%s", r.stderr)
			}
		})
		t.Run(cmd+" without BTF", func(t *testing.T) {
			args := []string{cmd, "--duration", "1s"}
			if cmd == "serve" {
				args = []string{cmd, "--metrics-addr", "127.0.0.1:0"}
			}
			msg, code := inPrivateMounts(t, "mount --bind /dev/null /sys/kernel/btf/vmlinux", args...)
			oneSentence(t, result{code: code, stderr: msg + "\n"}, 1, "BTF", "CONFIG_DEBUG_INFO_BTF")
		})
	}
}

// What this kernel (6.18) needs for trace, serve and doctor, measured with
// setpriv as uid 65534: CAP_BPF and CAP_PERFMON to load and attach,
// CAP_DAC_READ_SEARCH to read tracefs (mode 0700); CAP_SYS_RESOURCE is
// not needed (BPF memory is charged to the memory cgroup since 5.11).
func TestNonRootCapabilities(t *testing.T) {
	testenv.RequireBPF(t)
	minimal := []string{"bpf", "perfmon", "dac_read_search"}

	t.Run("BPF and PERFMON only", func(t *testing.T) {
		r := runRstwatch(t, asNobody(t, "bpf", "perfmon"), "trace", "--duration", "1s")
		oneSentence(t, r, 1, "CAP_DAC_READ_SEARCH", "/sys/kernel/tracing")
		for _, wrong := range []string{"not mounted", "CAP_BPF,", "CAP_SYS_RESOURCE"} {
			if strings.Contains(r.stderr, wrong) {
				t.Errorf("says %q:\n%s", wrong, r.stderr)
			}
		}
	})

	t.Run("trace with the minimum", func(t *testing.T) {
		dir := t.TempDir()
		os.Chmod(dir, 0o777)
		ready := filepath.Join(dir, "ready")
		cmd := exec.Command(asNobody(t, minimal...)[0], append(asNobody(t, minimal...)[1:],
			testbin.Rstwatch(t), "trace", "-o", "json", "--zk-discover=false", "--pid", fmt.Sprint(os.Getpid()), "--ready-file", ready)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		waitFile(t, ready, &stderr)
		port := refuse(t, 2)
		time.Sleep(100 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit %v:\n%s", err, stderr.String())
		}
		var sent, received int
		for _, l := range parseLines(t, stdout.Bytes()) {
			if l.Type == "reset" && l.Direction == "send" && l.Local.Port == port {
				sent++
			}
			if l.Type == "reset" && l.Direction == "receive" && l.Remote.Port == port && l.Owner != nil && l.Owner.PID == os.Getpid() {
				received++
			}
		}
		if sent != 2 || received != 2 {
			t.Fatalf("with %v: %d sent and %d received of 2 refused connects:\n%s", minimal, sent, received, stdout.String())
		}
	})

	t.Run("serve with the minimum", func(t *testing.T) {
		dir := t.TempDir()
		os.Chmod(dir, 0o777)
		ready := filepath.Join(dir, "ready")
		p := asNobody(t, minimal...)
		cmd := exec.Command(p[0], append(p[1:], testbin.Rstwatch(t), "serve", "--zk-discover=false",
			"--metrics-addr", "127.0.0.1:0", "--ready-file", ready)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		waitFile(t, ready, &stderr)
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("exit %v:\n%s", err, stderr.String())
		}
	})

	t.Run("doctor without privileges", func(t *testing.T) {
		r := runRstwatch(t, asNobody(t), "doctor")
		if r.code != 1 {
			t.Fatalf("exit %d, want 1:\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "FAIL  privileges") || !strings.Contains(r.stdout, "CAP_BPF, CAP_PERFMON and CAP_DAC_READ_SEARCH") {
			t.Errorf("the privileges line does not name the capabilities:\n%s", r.stdout)
		}
		for _, wrong := range []string{"Linux 5.8", "Linux 4.16", "loses", "missing"} {
			if strings.Contains(r.stdout, wrong) {
				t.Errorf("a permission problem reported as %q:\n%s", wrong, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, "skip  BPF ring buffer") || !strings.Contains(r.stdout, "not probed") {
			t.Errorf("what could not be probed is not said so:\n%s", r.stdout)
		}
	})

	t.Run("doctor with the minimum", func(t *testing.T) {
		r := runRstwatch(t, asNobody(t, minimal...), "doctor")
		if r.code != 0 || !strings.Contains(r.stdout, "rstwatch trace can run here.") {
			t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stdout, "warn  other users' processes") || !strings.Contains(r.stdout, "CAP_SYS_PTRACE") {
			t.Errorf("what CAP_SYS_PTRACE adds is not said:\n%s", r.stdout)
		}
	})
}

// The deployment files grant what serve needs: it runs with exactly the
// systemd unit's capabilities as a non-root user, and with exactly the
// DaemonSet's as uid 0, both with no_new_privs.
func TestDeployedCapabilitiesSuffice(t *testing.T) {
	testenv.RequireBPF(t)
	testenv.RequireProgram(t, "setpriv", "util-linux", "RSTWATCH_REQUIRE_BPF")
	unit, err := os.ReadFile("../../deploy/systemd/rstwatch.service")
	if err != nil {
		t.Fatal(err)
	}
	var unitCaps []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "AmbientCapabilities="); ok {
			for _, c := range strings.Fields(v) {
				unitCaps = append(unitCaps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
		}
	}
	ds, err := os.ReadFile("../../deploy/kubernetes/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var dsCaps []string
	for _, line := range strings.Split(string(ds), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "add: ["); ok {
			for _, c := range strings.Split(strings.TrimSuffix(v, "]"), ",") {
				dsCaps = append(dsCaps, strings.ToLower(strings.Trim(strings.TrimSpace(c), `"`)))
			}
		}
	}
	if len(unitCaps) == 0 || len(dsCaps) == 0 {
		t.Fatalf("no capabilities found in the unit (%v) or the DaemonSet (%v)", unitCaps, dsCaps)
	}
	set := func(caps []string) string { return "-all,+" + strings.Join(caps, ",+") }
	for _, tc := range []struct {
		name   string
		prefix []string
	}{
		{"systemd unit, uid 65534 " + strings.Join(unitCaps, ","), []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"--inh-caps=" + set(unitCaps), "--ambient-caps=" + set(unitCaps), "--bounding-set=" + set(unitCaps), "--no-new-privs"}},
		{"DaemonSet, uid 0 " + strings.Join(dsCaps, ","), []string{"setpriv", "--inh-caps=-all", "--bounding-set=" + set(dsCaps), "--no-new-privs"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.Chmod(dir, 0o777)
			ready := filepath.Join(dir, "ready")
			cmd := exec.Command(tc.prefix[0], append(tc.prefix[1:], testbin.Rstwatch(t), "serve",
				"--metrics-addr", "127.0.0.1:0", "--ready-file", ready)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			waitFile(t, ready, &stderr)
			cmd.Process.Signal(syscall.SIGTERM)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("exit %v:\n%s", err, stderr.String())
			}
			if strings.Contains(stderr.String(), "level=WARN") || strings.Contains(stderr.String(), "level=ERROR") {
				t.Errorf("warnings with the deployed capabilities:\n%s", stderr.String())
			}
		})
	}
}

func waitFile(t *testing.T, path string, stderr *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready after 20 s:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Output that cannot be written stops the trace: one sentence, exit 1, and
// the programs are detached (the process exits).
func TestTraceOutputFails(t *testing.T) {
	testenv.RequireBPF(t)
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	defer full.Close()
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	cmd := exec.Command(testbin.Rstwatch(t), "trace", "-o", "json", "--zk-discover=false", "--ready-file", ready)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = full, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFile(t, ready, &stderr)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(10 * time.Second)
	for {
		refuse(t, 1) // events to write
		select {
		case err := <-done:
			msg := strings.TrimSpace(stderr.String())
			last := msg[strings.LastIndexByte(msg, '\n')+1:]
			if exitCode(err) != 1 || !strings.HasPrefix(last, "rstwatch: writing output:") || strings.Count(msg, "no space left") != 1 {
				t.Fatalf("exit %d, want 1 and the failure said once:\n%s", exitCode(err), msg)
			}
			return
		case <-deadline:
			t.Fatalf("still running 10 s after its output failed:\n%s", stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// --netns takes the name 'ip netns add' gave: only resets in that
// namespace are reported.
func TestTraceNetnsByName(t *testing.T) {
	testenv.RequireBPF(t)
	ip := testenv.RequireProgram(t, "ip", "iproute2", "RSTWATCH_REQUIRE_BPF")
	name := fmt.Sprintf("rstwatch-e2e-%d", os.Getpid())
	if out, err := exec.Command(ip, "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command(ip, "netns", "delete", name).Run() })
	if out, err := exec.Command(ip, "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, out)
	}
	s := start(t, "trace", "-o", "json", "--netns", name, "--zk-discover=false")
	outside := refuse(t, 1) // this namespace: filtered out in the kernel
	self, _ := os.Executable()
	inside := refuse(t, 0)
	cmd := exec.Command(ip, "netns", "exec", name, self, fmt.Sprint(inside))
	cmd.Env = append(os.Environ(), helperEnv+"=refuse")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("a refused connect in %s: %v: %s", name, err, out)
	}
	time.Sleep(100 * time.Millisecond)
	if code := s.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	var in int
	for _, l := range parseLines(t, s.stdout.Bytes()) {
		if l.Type != "reset" {
			continue
		}
		if l.Local.Port == outside || l.Remote.Port == outside {
			t.Errorf("a reset outside %s passed the filter: %+v", name, l)
		}
		if l.Local.Port == inside || l.Remote.Port == inside {
			in++
		}
	}
	if in != 2 {
		t.Fatalf("%d resets of the refused connect in %s, want 2:\n%s", in, name, s.stdout)
	}
}
