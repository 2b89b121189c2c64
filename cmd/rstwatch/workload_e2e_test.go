package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/testbin"
	"github.com/rstwatch/rstwatch/internal/testenv"
	"github.com/rstwatch/rstwatch/internal/workload/workloadtest"
)

const (
	wlCID = "4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a"
	wlUID = "5f3a8c2e-1b4d-4e6f-9a0b-7c8d9e0f1a2b"
)

// wlLine is the part of a JSON line these tests read.
type wlLine struct {
	Type      string `json:"type"`
	Direction string `json:"direction"`
	Local     struct {
		Port int `json:"port"`
	} `json:"local"`
	Remote struct {
		Port int `json:"port"`
	} `json:"remote"`
	Task struct {
		PID  int    `json:"pid"`
		Unit string `json:"unit"`
	} `json:"task"`
	Owner *struct {
		PID    int  `json:"pid"`
		Alive  bool `json:"alive"`
		Cgroup *struct {
			ID   uint64 `json:"id"`
			Path string `json:"path"`
		} `json:"cgroup"`
		Unit      string `json:"unit"`
		Container *struct {
			ID, Runtime, Name string
		} `json:"container"`
		Pod *struct {
			Namespace, Name, UID, Container string
		} `json:"pod"`
	} `json:"owner"`
	ByOwner []struct {
		Key   string `json:"key"`
		Count int    `json:"count"`
	} `json:"by_owner"`
	Filtered uint64 `json:"filtered"`
}

func wlLines(t *testing.T, out string) []wlLine {
	t.Helper()
	var ls []wlLine
	for _, s := range strings.Split(strings.TrimSpace(out), "\n") {
		var l wlLine
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("not JSON: %v: %s", err, s)
		}
		ls = append(ls, l)
	}
	return ls
}

// A process in a systemd unit's cgroup and one in a kubelet-style pod
// cgroup (containerd, systemd driver, with the kubelet's log tree) each
// connect to a closed port: trace names the unit, and the pod, its uid
// and the container; the summary groups by them.
func TestTraceNamesUnitAndPod(t *testing.T) {
	testenv.RequireBPF(t)
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	k.AddPod("shop", "checkout-7d9c", wlUID)
	k.AddContainer("shop", "checkout-7d9c", wlUID, "app", wlCID)
	port := closedPort(t)

	unitRel, podRel := "/system.slice/zookeeper.service", workloadtest.SystemdPod("burstable", wlUID, "cri-containerd-", wlCID)
	// bash connects (refused) each time it is told, and lives on while
	// rstwatch names it.
	script := fmt.Sprintf("while read x; do : 3<>/dev/tcp/127.0.0.1/%d; done 2>/dev/null", port)
	unitCmd, unitGo := tr.Start(unitRel, "bash", "-c", script)
	podCmd, podGo := tr.Start(podRel, "bash", "-c", script)

	s := start(t, "trace", "-o", "json", "--port", fmt.Sprint(port), "--cgroup-root", tr.Root, "--kubelet-logs", k.Dir)
	unitGo.Write([]byte("go\n"))
	podGo.Write([]byte("go\n"))
	time.Sleep(300 * time.Millisecond)
	if code := s.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	var unitSeen, podSeen, taskSeen bool
	lines := wlLines(t, s.stdout.String())
	for _, l := range lines {
		if l.Type != "reset" {
			continue
		}
		if o := l.Owner; l.Direction == "receive" && o != nil && o.PID == unitCmd.Process.Pid {
			unitSeen = o.Unit == "zookeeper.service" && o.Cgroup != nil && o.Cgroup.Path == unitRel &&
				o.Cgroup.ID == workloadtest.ID(t, tr.Dir(unitRel)) && o.Pod == nil && o.Container == nil
		}
		if o := l.Owner; l.Direction == "receive" && o != nil && o.PID == podCmd.Process.Pid {
			podSeen = o.Pod != nil && o.Pod.Namespace == "shop" && o.Pod.Name == "checkout-7d9c" && o.Pod.UID == wlUID &&
				o.Pod.Container == "app" && o.Container != nil && o.Container.ID == wlCID && o.Container.Runtime == "containerd" &&
				o.Container.Name == "app" && o.Cgroup != nil && o.Cgroup.Path == podRel
		}
		// The refused SYN is answered in the connecting task's context:
		// no owner, and the task's unit.
		if l.Direction == "send" && l.Owner == nil && l.Task.PID == unitCmd.Process.Pid {
			taskSeen = l.Task.Unit == "zookeeper.service"
		}
	}
	if !unitSeen || !podSeen || !taskSeen {
		t.Fatalf("unit %v, pod %v, task %v:\n%s\n%s", unitSeen, podSeen, taskSeen, s.stdout, s.stderr)
	}
	sum := lines[len(lines)-1]
	groups := map[string]int{}
	for _, r := range sum.ByOwner {
		groups[r.Key] = r.Count
	}
	if groups["unit zookeeper.service"] != 1 || groups["pod shop/checkout-7d9c (container app)"] != 1 {
		t.Errorf("summary by owner: %+v", sum.ByOwner)
	}
}

// --unit and --pod keep only their workload's resets; a bad --pod is a
// usage error.
func TestTraceWorkloadFilters(t *testing.T) {
	testenv.RequireBPF(t)
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	k.AddPod("shop", "checkout-7d9c", wlUID)
	k.AddContainer("shop", "checkout-7d9c", wlUID, "app", wlCID)
	port := closedPort(t)
	script := fmt.Sprintf("while read x; do : 3<>/dev/tcp/127.0.0.1/%d; done 2>/dev/null", port)
	unitCmd, unitGo := tr.Start("/system.slice/zookeeper.service", "bash", "-c", script)
	podCmd, podGo := tr.Start(workloadtest.SystemdPod("", wlUID, "cri-containerd-", wlCID), "bash", "-c", script)

	for _, tc := range []struct {
		flag, value string
		want        int
	}{
		{"--unit", "zookeeper", unitCmd.Process.Pid},
		{"--pod", "shop/checkout-7d9c", podCmd.Process.Pid},
	} {
		s := start(t, "trace", "-o", "json", "--port", fmt.Sprint(port), "--cgroup-root", tr.Root, "--kubelet-logs", k.Dir, tc.flag, tc.value)
		unitGo.Write([]byte("go\n"))
		podGo.Write([]byte("go\n"))
		time.Sleep(300 * time.Millisecond)
		if code := s.stop(t, syscall.SIGINT); code != 0 {
			t.Fatalf("exit %d: %s", code, s.stderr)
		}
		var n int
		for _, l := range wlLines(t, s.stdout.String()) {
			if l.Type != "reset" {
				continue
			}
			n++
			if l.Task.PID != tc.want && (l.Owner == nil || l.Owner.PID != tc.want) {
				t.Errorf("%s %s let through a reset of another workload: %+v", tc.flag, tc.value, l)
			}
		}
		if n != 2 { // the refused SYN, sent and received
			t.Errorf("%s %s: %d resets, want 2:\n%s", tc.flag, tc.value, n, s.stdout)
		}
	}
	out, err := runBinary(t, "trace", "--pod", "no-slash")
	if exitCode(err) != 2 || !strings.Contains(out, "NAMESPACE/NAME") {
		t.Errorf("--pod no-slash: exit %d, %s", exitCode(err), out)
	}
	out, err = runBinary(t, "trace", "--cgroup-root", t.TempDir())
	if exitCode(err) != 2 || !strings.Contains(out, "not a cgroup v2") {
		t.Errorf("--cgroup-root on tmpfs: exit %d, %s", exitCode(err), out)
	}
}

// --unit filters in the kernel, and follows a unit that starts after the
// trace: its cgroup is added to the kernel's filter once the watcher sees
// it, while another unit's resets stay filtered out in the kernel.
func TestTraceUnitFilterFollowsLateUnit(t *testing.T) {
	testenv.RequireBPF(t)
	tr := workloadtest.New(t)
	port := closedPort(t)
	script := fmt.Sprintf("while read x; do : 3<>/dev/tcp/127.0.0.1/%d; done 2>/dev/null", port)
	otherCmd, otherGo := tr.Start("/system.slice/other.service", "bash", "-c", script)

	s := start(t, "trace", "-o", "json", "--port", fmt.Sprint(port), "--cgroup-root", tr.Root, "--unit", "late")
	lateCmd, lateGo := tr.Start("/system.slice/late.service", "bash", "-c", script)
	time.Sleep(300 * time.Millisecond) // the watcher learns late.service
	otherGo.Write([]byte("go\n"))
	lateGo.Write([]byte("go\n"))
	time.Sleep(300 * time.Millisecond)
	if code := s.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	var n int
	var filtered uint64
	for _, l := range wlLines(t, s.stdout.String()) {
		switch l.Type {
		case "reset":
			n++
			if l.Task.PID != lateCmd.Process.Pid && (l.Owner == nil || l.Owner.PID != lateCmd.Process.Pid) {
				t.Errorf("--unit late let through a reset of another workload: %+v", l)
			}
		case "summary":
			filtered = l.Filtered
		}
	}
	if n != 2 { // the refused SYN, sent and received
		t.Errorf("--unit late: %d resets, want 2:\n%s", n, s.stdout)
	}
	// other.service's two resets were dropped by the kernel's filter.
	if filtered < 2 {
		t.Errorf("the kernel filtered %d resets, want other.service's 2 at least (pid %d)", filtered, otherCmd.Process.Pid)
	}
}

// The owner exited, and its cgroup and pod were removed, before its
// socket sent a reset: the cgroup the kernel captured when it learned the
// owner still names the pod.
func TestTraceExitedOwnerKeepsItsPod(t *testing.T) {
	testenv.RequireBPF(t)
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	k.AddPod("shop", "checkout-7d9c", wlUID)
	k.AddContainer("shop", "checkout-7d9c", wlUID, "app", wlCID)
	podRel := workloadtest.SystemdPod("burstable", wlUID, "cri-containerd-", wlCID)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	s := start(t, "trace", "-o", "json", "--port", fmt.Sprint(port), "--cgroup-root", tr.Root, "--kubelet-logs", k.Dir)
	cmd, goOn := tr.Start(podRel, "bash", "-c", fmt.Sprintf("read x; exec 3<>/dev/tcp/127.0.0.1/%d; read y", port))
	goOn.Write([]byte("connect\n"))
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(200 * time.Millisecond) // let rstwatch see the pod (it would live far longer)
	goOn.Close()                       // bash exits: its socket is closed, in FIN_WAIT2
	cmd.Wait()
	tr.Remove("/kubepods.slice")
	k.RemovePod("shop", "checkout-7d9c", wlUID)
	conn.Write([]byte("data for a closed socket\n")) // answered with a reset
	time.Sleep(300 * time.Millisecond)
	if code := s.stop(t, syscall.SIGINT); code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	for _, l := range wlLines(t, s.stdout.String()) {
		if o := l.Owner; l.Type == "reset" && l.Direction == "send" && o != nil && o.PID == cmd.Process.Pid {
			if o.Alive || o.Pod == nil || o.Pod.Name != "checkout-7d9c" || o.Pod.Container != "app" {
				t.Fatalf("exited owner: %+v pod %+v", o, o.Pod)
			}
			return
		}
	}
	t.Fatalf("no reset sent by the exited owner's socket:\n%s", s.stdout)
}

func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// As in the DaemonSet: rstwatch runs in a pod's cgroup with a cgroup
// namespace of its own (its /sys/fs/cgroup shows only its own cgroup) and
// the host's tree mounted elsewhere (--cgroup-root). Host processes'
// /proc/PID/cgroup paths climb out of its namespace ("/../../..."); it
// still names their units and pods, from where its own cgroup sits in the
// host's tree.
func TestTraceInOwnCgroupNamespace(t *testing.T) {
	testenv.RequireBPF(t)
	unshare := testenv.RequireProgram(t, "unshare", "util-linux", "RSTWATCH_REQUIRE_BPF")
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	k.AddPod("shop", "checkout-7d9c", wlUID)
	k.AddContainer("shop", "checkout-7d9c", wlUID, "app", wlCID)
	port := closedPort(t)
	script := fmt.Sprintf("while read x; do : 3<>/dev/tcp/127.0.0.1/%d; done 2>/dev/null", port)
	unitCmd, unitGo := tr.Start("/system.slice/zookeeper.service", "bash", "-c", script)
	podCmd, podGo := tr.Start(workloadtest.CgroupfsPod("burstable", wlUID, wlCID), "bash", "-c", script)

	// rstwatch's own pod.
	self := workloadtest.SystemdPod("besteffort", "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "cri-containerd-",
		"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210")
	tr.Mkdir(self)
	dir := t.TempDir()
	host, ns, ready := dir+"/host", dir+"/ns", dir+"/ready"
	for _, d := range []string{host, ns} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Move into the pod's cgroup, then a new cgroup namespace rooted there
	// and a mount namespace where the host's tree is at $host and $ns is a
	// cgroup2 mount made in the namespace (the container's /sys/fs/cgroup).
	sh := fmt.Sprintf(`echo $$ > %s/cgroup.procs && exec %s --cgroup --mount --propagation private sh -c '
		mount --bind %s %s && mount -t cgroup2 none %s &&
		exec %s trace -o json --port %d --cgroup-root %s --kubelet-logs %s --ready-file %s'`,
		tr.Dir(self), unshare, tr.Root, host, ns, testbin.Rstwatch(t), port, host, k.Dir, ready)
	cmd := exec.Command("bash", "-c", sh)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rstwatch not ready after 15 s: %s", &stderr)
		}
	}
	// rstwatch really sees its own namespace.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid)); err != nil || !strings.Contains(string(b), "0::"+tr.Path+self) {
		t.Fatalf("rstwatch is not in its pod's cgroup: %s %v", b, err)
	}
	unitGo.Write([]byte("go\n"))
	podGo.Write([]byte("go\n"))
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v: %s", err, &stderr)
	}
	var unit, pod bool
	for _, l := range wlLines(t, stdout.String()) {
		if o := l.Owner; l.Type == "reset" && o != nil {
			unit = unit || o.PID == unitCmd.Process.Pid && o.Unit == "zookeeper.service"
			pod = pod || o.PID == podCmd.Process.Pid && o.Pod != nil && o.Pod.Name == "checkout-7d9c" && o.Pod.Container == "app"
		}
	}
	if !unit || !pod {
		t.Fatalf("unit named %v, pod named %v:\n%s\n%s", unit, pod, &stdout, &stderr)
	}
}

// In a cgroup namespace of its own without --cgroup-root, rstwatch says
// what it cannot name and what to mount, and traces on.
func TestTraceWarnsInOwnCgroupNamespace(t *testing.T) {
	testenv.RequireBPF(t)
	unshare := testenv.RequireProgram(t, "unshare", "util-linux", "RSTWATCH_REQUIRE_BPF")
	ns := t.TempDir()
	cmd := exec.Command(unshare, "--cgroup", "--mount", "--propagation", "private", "sh", "-c",
		fmt.Sprintf("mount -t cgroup2 none %s && exec %s trace --duration 1s --port %d", ns, testbin.Rstwatch(t), closedPort(t)))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "cgroup namespace of its own") || !strings.Contains(string(out), "--cgroup-root") {
		t.Fatalf("%v:\n%s", err, out)
	}
}
