package workload_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/workload"
	"github.com/rstwatch/rstwatch/internal/workload/workloadtest"
)

const (
	cid  = "4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a"
	cid2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cid3 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	uid  = "5f3a8c2e-1b4d-4e6f-9a0b-7c8d9e0f1a2b"
	uid2 = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
)

func newResolver(t *testing.T, tr *workloadtest.Tree, k *workloadtest.Kubelet) *workload.Resolver {
	t.Helper()
	r, err := workload.New(workload.Options{CgroupRoot: tr.Root, KubeletLogs: k.Dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// startIn runs a real process in cgroup rel and returns the id rstwatch
// reads for it from /proc, checked against the directory's inode.
func startIn(t *testing.T, tr *workloadtest.Tree, r *workload.Resolver, rel string) (uint64, *os.File) {
	t.Helper()
	cmd, stdin := tr.Start(rel, "sleep", "60")
	want := workloadtest.ID(t, tr.Dir(rel))
	if got := r.CgroupOfPID(uint32(cmd.Process.Pid), "sleep"); got != want {
		t.Fatalf("cgroup of pid %d in %s: got %d, want the directory's inode %d", cmd.Process.Pid, rel, got, want)
	}
	if got := r.CgroupOfPID(uint32(cmd.Process.Pid), "other"); got != 0 {
		t.Fatalf("a process of another name was taken for it: %d", got)
	}
	return want, stdin
}

// Real cgroups as systemd and the kubelet (both drivers) with containerd,
// CRI-O and Docker lay them out, each with a real process in it, and a
// kubelet log tree: every id resolves to the unit, container and pod.
func TestResolveLayouts(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	k.AddPod("shop", "checkout-7d9c", uid)
	k.AddContainer("shop", "checkout-7d9c", uid, "app", cid)
	k.AddContainer("shop", "checkout-7d9c", uid, "envoy", cid2)
	k.AddPod("zk", "zk-0", uid2)
	k.AddContainer("zk", "zk-0", uid2, "zookeeper", cid3)

	type want struct {
		unit, userUnit, runtime, id, ns, pod, podUID, container string
	}
	cases := []struct {
		name, rel string
		want      want
	}{
		{"systemd unit", "/system.slice/zookeeper.service", want{unit: "zookeeper.service"}},
		{"user unit", "/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service",
			want{unit: "user@1000.service", userUnit: "syncthing.service"}},
		{"session scope", "/user.slice/user-1000.slice/session-3.scope", want{unit: "session-3.scope"}},
		{"docker outside kubernetes", "/system.slice/docker-" + cid3 + ".scope",
			want{unit: "docker-" + cid3 + ".scope", runtime: "docker", id: cid3}},
		{"systemd driver, containerd", workloadtest.SystemdPod("burstable", uid, "cri-containerd-", cid),
			want{unit: "cri-containerd-" + cid + ".scope", runtime: "containerd", id: cid, ns: "shop", pod: "checkout-7d9c", podUID: uid, container: "app"}},
		{"systemd driver, CRI-O", workloadtest.SystemdPod("besteffort", uid, "crio-", cid2),
			want{unit: "crio-" + cid2 + ".scope", runtime: "cri-o", id: cid2, ns: "shop", pod: "checkout-7d9c", podUID: uid, container: "envoy"}},
		{"systemd driver, docker, guaranteed", workloadtest.SystemdPod("", uid2, "docker-", cid3),
			want{unit: "docker-" + cid3 + ".scope", runtime: "docker", id: cid3, ns: "zk", pod: "zk-0", podUID: uid2, container: "zookeeper"}},
		{"cgroupfs driver, containerd", workloadtest.CgroupfsPod("burstable", uid, cid),
			want{id: cid, ns: "shop", pod: "checkout-7d9c", podUID: uid, container: "app"}},
		{"cgroupfs driver, CRI-O", workloadtest.CgroupfsPod("besteffort", uid2, "crio-"+cid3),
			want{runtime: "cri-o", id: cid3, ns: "zk", pod: "zk-0", podUID: uid2, container: "zookeeper"}},
		{"cgroupfs driver, docker, guaranteed", workloadtest.CgroupfsPod("", uid, cid2),
			want{id: cid2, ns: "shop", pod: "checkout-7d9c", podUID: uid, container: "envoy"}},
		{"pod cgroup itself", "/kubepods/burstable/pod" + uid,
			want{ns: "shop", pod: "checkout-7d9c", podUID: uid}},
	}
	// Half the cgroups exist before the resolver starts (scanned), half
	// after (watched, or found by a rescan).
	for _, c := range cases[:len(cases)/2] {
		tr.Mkdir(c.rel)
	}
	r := newResolver(t, tr, k)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, _ := startIn(t, tr, r, c.rel)
			var w *event.Workload
			deadline := time.Now().Add(3 * time.Second)
			for w = r.Lookup(id); w.Path == "" && time.Now().Before(deadline); w = r.Lookup(id) {
				time.Sleep(50 * time.Millisecond) // past the rescan rate limit
			}
			if w.Cgroup != id || w.Path != c.rel {
				t.Fatalf("cgroup %d: got %+v, want path %s", id, w, c.rel)
			}
			var got want
			got.unit, got.userUnit = w.Unit, w.UserUnit
			if w.Container != nil {
				got.runtime, got.id = w.Container.Runtime, w.Container.ID
				if w.Container.Name != c.want.container {
					t.Errorf("container name %q, want %q", w.Container.Name, c.want.container)
				}
			}
			if w.Pod != nil {
				got.ns, got.pod, got.podUID, got.container = w.Pod.Namespace, w.Pod.Name, w.Pod.UID, w.Pod.Container
			}
			if got != c.want {
				t.Errorf("%s:\n got %+v\nwant %+v", c.rel, got, c.want)
			}
			t.Logf("%s → %q", c.rel, workload.Describe(w))
		})
	}
}

// A container whose pod has no directory on this node is a container
// only; a directory for another uid with the same name, or a link whose
// target names another pod, never lends it a pod.
func TestContainerWithoutPodDirectory(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	// Same namespace and name, another uid (the pod was recreated).
	k.AddPod("shop", "checkout-7d9c", uid2)
	rel := workloadtest.SystemdPod("burstable", uid, "cri-containerd-", cid)
	r := newResolver(t, tr, k)
	id, _ := startIn(t, tr, r, rel)
	w := r.Lookup(id)
	if w.Container == nil || w.Container.ID != cid || w.Container.Runtime != "containerd" {
		t.Fatalf("want the container, got %+v", w)
	}
	if w.Pod != nil || w.Container.Name != "" {
		t.Fatalf("a pod was named without its directory: %+v %+v", w.Pod, w.Container)
	}
	if d := workload.Describe(w); d != "containerd container 4f1c2a9e8d7b (pod uid "+uid+", not found on this node)" {
		t.Errorf("Describe: %q", d)
	}

	// A link for this container id whose target is another pod's: refused.
	if err := os.Symlink(k.PodDir("shop", "checkout-7d9c", uid2)+"/app/0.log",
		k.Dir+"/containers/checkout-7d9c_shop_app-"+cid+".log"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the rescan rate limit
	if w := r.Lookup(id); w.Pod != nil || w.Container.Name != "" {
		t.Fatalf("a link to another pod's directory named this container: %+v %+v", w.Pod, w.Container)
	}
}

// The owner exited and its cgroup and pod were removed before the reset:
// what the resolver learned while they existed still names it. The
// cgroup and pod are made after the resolver started, so this also shows
// that it learns them as they are made, not only when asked.
func TestRemovedCgroupStillResolves(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	r := newResolver(t, tr, k)

	rel := workloadtest.SystemdPod("burstable", uid, "cri-containerd-", cid)
	unit := "/system.slice/zookeeper.service"
	k.AddPod("shop", "checkout-7d9c", uid)
	k.AddContainer("shop", "checkout-7d9c", uid, "app", cid)
	podCmd, _ := tr.Start(rel, "sleep", "60")
	unitCmd, _ := tr.Start(unit, "sleep", "60")
	podID, unitID := workloadtest.ID(t, tr.Dir(rel)), workloadtest.ID(t, tr.Dir(unit))

	// Give the watcher its moment (a real cgroup lives far longer), without
	// asking the resolver anything that would make it scan.
	deadline := time.Now().Add(5 * time.Second)
	for !r.Known(podID) || !r.Known(unitID) || !r.KnownPod(uid, cid) {
		if time.Now().After(deadline) {
			t.Fatal("the watcher did not learn the new cgroups and pod within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, c := range []*os.Process{podCmd.Process, unitCmd.Process} {
		c.Kill()
	}
	podCmd.Wait()
	unitCmd.Wait()
	tr.Remove("/kubepods.slice")
	tr.Remove("/system.slice")
	k.RemovePod("shop", "checkout-7d9c", uid)
	if _, err := os.Stat(tr.Dir(rel)); !os.IsNotExist(err) {
		t.Fatalf("the cgroup is still there: %v", err)
	}
	// Let the removals be seen too (they must not erase what was learned).
	time.Sleep(100 * time.Millisecond)

	w := r.Lookup(podID)
	if w.Pod == nil || w.Pod.Namespace != "shop" || w.Pod.Name != "checkout-7d9c" || w.Pod.Container != "app" || w.Path != rel {
		t.Fatalf("removed pod cgroup: %+v pod %+v", w, w.Pod)
	}
	if w := r.Lookup(unitID); w.Unit != "zookeeper.service" {
		t.Fatalf("removed unit cgroup: %+v", w)
	}
	t.Logf("after removal: %q, %q", workload.Describe(r.Lookup(podID)), workload.Describe(r.Lookup(unitID)))
}

// The enricher names the owner, and the task only where its cgroup is
// another; an id that is not under the root keeps its id and nothing else.
func TestEnrich(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	r := newResolver(t, tr, k)
	unitID, _ := startIn(t, tr, r, "/system.slice/zookeeper.service")
	cmd, _ := tr.Start("/system.slice/client.service", "sleep", "60")
	clientID := workloadtest.ID(t, tr.Dir("/system.slice/client.service"))

	e := &event.Event{
		Task:  event.Task{PID: 99999999, Comm: "swapper/0", Cgroup: unitID},
		Owner: &event.Owner{PID: 1, Comm: "x", Cgroup: unitID, Alive: true},
	}
	r.Enrich(context.Background(), e)
	if e.Owner.Workload == nil || e.Owner.Workload.Unit != "zookeeper.service" || e.Task.Workload != nil {
		t.Fatalf("same cgroup: owner %+v task %+v", e.Owner.Workload, e.Task.Workload)
	}

	// No id from the kernel (a socket older than the trace): /proc.
	e = &event.Event{
		Task:  event.Task{PID: uint32(cmd.Process.Pid), Comm: "sleep"},
		Owner: &event.Owner{PID: uint32(cmd.Process.Pid), Comm: "sleep", Alive: true, Source: event.OwnerProcfs},
	}
	r.Enrich(context.Background(), e)
	if e.Owner.Workload == nil || e.Owner.Workload.Cgroup != clientID || e.Owner.Workload.Unit != "client.service" || e.Task.Workload != nil {
		t.Fatalf("from /proc: owner %+v task %+v", e.Owner.Workload, e.Task.Workload)
	}
	// An exited owner without an id is unknown, not read from a reused pid.
	e.Owner.Workload, e.Owner.Alive = nil, false
	e.Task = event.Task{PID: 0, Comm: "swapper/1", Cgroup: unitID}
	r.Enrich(context.Background(), e)
	if e.Owner.Workload != nil || e.Task.Workload == nil || e.Task.Workload.Unit != "zookeeper.service" {
		t.Fatalf("exited owner: owner %+v task %+v", e.Owner.Workload, e.Task.Workload)
	}
	// Outside the root: the id only.
	if w := r.Lookup(1); w == nil || w.Cgroup != 1 || w.Path != "" || workload.Describe(w) != "" {
		t.Fatalf("root of the hierarchy, outside the test's: %+v", w)
	}
}

// Preview names the owners of a batch before any event is enriched, and
// Enrich keeps what Preview found.
func TestPreviewNamesOwners(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	r := newResolver(t, tr, k)
	unitID, _ := startIn(t, tr, r, "/system.slice/zookeeper.service")
	e := &event.Event{
		Task:  event.Task{PID: 99999999, Comm: "swapper/0", Cgroup: unitID},
		Owner: &event.Owner{PID: 1, Comm: "x", Cgroup: unitID, Alive: true},
	}
	r.Preview([]*event.Event{e, {Task: event.Task{PID: 99999999, Comm: "swapper/1"}}})
	w := e.Owner.Workload
	if w == nil || w.Unit != "zookeeper.service" {
		t.Fatalf("after Preview: owner %+v", w)
	}
	r.Enrich(context.Background(), e)
	if e.Owner.Workload != w || e.Task.Workload != nil {
		t.Fatalf("after Enrich: owner %+v task %+v", e.Owner.Workload, e.Task.Workload)
	}
}

func TestMatching(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	k.AddPod("shop", "checkout-7d9c", uid)
	k.AddContainer("shop", "checkout-7d9c", uid, "app", cid)
	podRel := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + "5f3a8c2e_1b4d_4e6f_9a0b_7c8d9e0f1a2b" + ".slice"
	podID := tr.Mkdir(podRel)
	ctrID := tr.Mkdir(workloadtest.SystemdPod("burstable", uid, "cri-containerd-", cid))
	unitID := tr.Mkdir("/system.slice/zookeeper.service")
	r := newResolver(t, tr, k)

	for _, tc := range []struct {
		name string
		sel  workload.Selector
		want []uint64
	}{
		{"pod", workload.Selector{Pods: []workload.PodRef{{"shop", "checkout-7d9c"}}}, []uint64{podID, ctrID}},
		{"unit", workload.Selector{Units: []string{"zookeeper"}}, []uint64{unitID}},
		{"container name", workload.Selector{Containers: []string{"app"}}, []uint64{ctrID}},
		{"container id", workload.Selector{Containers: []string{cid[:12]}}, []uint64{ctrID}},
		{"short id", workload.Selector{Containers: []string{cid[:6]}}, nil},
		{"pod and container", workload.Selector{Pods: []workload.PodRef{{"shop", "checkout-7d9c"}}, Containers: []string{"app"}}, []uint64{ctrID}},
		{"other pod", workload.Selector{Pods: []workload.PodRef{{"shop", "other"}}}, nil},
	} {
		got := r.Matching(tc.sel)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for _, id := range tc.want {
			found := false
			for _, g := range got {
				found = found || g == id
			}
			if !found {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			}
		}
	}
}

// Without the watcher, an unknown id makes the resolver rescan, at most
// once a second.
func TestRescanRateLimited(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	r := newResolver(t, tr, k)
	r.StopWatching()
	now := time.Now()
	r.SetClock(func() time.Time { return now })

	a := tr.Mkdir("/system.slice/a.service")
	if w := r.Lookup(a); w.Unit != "a.service" {
		t.Fatalf("first unknown id: no rescan: %+v", w)
	}
	b := tr.Mkdir("/system.slice/b.service")
	now = now.Add(500 * time.Millisecond)
	if w := r.Lookup(b); w.Path != "" {
		t.Fatalf("rescanned again within a second: %+v", w)
	}
	now = now.Add(500 * time.Millisecond)
	if w := r.Lookup(b); w.Unit != "b.service" {
		t.Fatalf("no rescan after a second: %+v", w)
	}
}

// What enrichment costs per event: with the kernel's ids (a map lookup),
// and for owners found in /proc (cached for a second per pid).
func BenchmarkEnrich(b *testing.B) {
	tr := workloadtest.New(b)
	k := workloadtest.NewKubelet(b)
	k.AddPod("shop", "checkout-7d9c", uid)
	k.AddContainer("shop", "checkout-7d9c", uid, "app", cid)
	rel := workloadtest.SystemdPod("burstable", uid, "cri-containerd-", cid)
	cmd, _ := tr.Start(rel, "sleep", "60")
	id := workloadtest.ID(b, tr.Dir(rel))
	r, err := workload.New(workload.Options{CgroupRoot: tr.Root, KubeletLogs: k.Dir})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	pid := uint32(cmd.Process.Pid)
	b.Run("kernel-id", func(b *testing.B) {
		for b.Loop() {
			e := event.Event{Task: event.Task{PID: pid, Comm: "sleep", Cgroup: id}, Owner: &event.Owner{PID: pid, Comm: "sleep", Alive: true, Cgroup: id}}
			r.Enrich(context.Background(), &e)
			if e.Owner.Workload.Pod == nil {
				b.Fatal("no pod")
			}
		}
	})
	b.Run("proc", func(b *testing.B) {
		for b.Loop() {
			e := event.Event{Task: event.Task{PID: pid, Comm: "sleep"}, Owner: &event.Owner{PID: pid, Comm: "sleep", Alive: true}}
			r.Enrich(context.Background(), &e)
			if e.Owner.Workload.Pod == nil {
				b.Fatal("no pod")
			}
		}
	})
}
