// Package workloadtest makes real cgroup v2 directories, laid out as
// systemd, the container runtimes and the kubelet name them, moves real
// processes into them, and makes the kubelet's log trees, for tests of
// every package that names workloads. Everything is made under a subtree
// of the test's own and removed at cleanup.
package workloadtest

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rstwatch/rstwatch/internal/testenv"
	"github.com/rstwatch/rstwatch/internal/workload"
)

// Tree is a test's own cgroup v2 subtree.
type Tree struct {
	Root  string // its directory, e.g. /sys/fs/cgroup/unified/rstwatch-test-12-1
	Path  string // its path from the hierarchy's root, as /proc/PID/cgroup shows it
	Mount string // the cgroup v2 mount it is in
	t     testing.TB
}

var seq atomic.Uint64

// New makes a fresh subtree under the cgroup v2 mount (the unified
// hierarchy of a hybrid host), removed at cleanup with every cgroup made
// in it; it skips (or fails, in CI) without root.
func New(t testing.TB) *Tree {
	t.Helper()
	testenv.RequireRoot(t, "makes cgroups")
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var mount string
	for _, m := range workload.ParseMountinfo(mi) {
		if m.Root == "/" {
			mount = m.Point
			break
		}
	}
	if mount == "" {
		t.Fatal("no cgroup v2 hierarchy is mounted (/proc/self/mountinfo)")
	}
	name := fmt.Sprintf("rstwatch-test-%d-%d", os.Getpid(), seq.Add(1))
	tr := &Tree{Root: filepath.Join(mount, name), Path: "/" + name, Mount: mount, t: t}
	if err := os.Mkdir(tr.Root, 0o755); err != nil {
		t.Fatalf("making a test cgroup: %v", err)
	}
	t.Cleanup(func() { tr.removeAll(tr.Root) })
	return tr
}

// Mkdir makes the cgroup rel (from the subtree's root, with its parents)
// and returns its id, the inode of its directory.
func (tr *Tree) Mkdir(rel string) uint64 {
	tr.t.Helper()
	dir := tr.Dir(rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tr.t.Fatalf("making cgroup %s: %v", rel, err)
	}
	return ID(tr.t, dir)
}

// Dir is the directory of cgroup rel.
func (tr *Tree) Dir(rel string) string { return filepath.Join(tr.Root, rel) }

// ID returns a cgroup directory's inode number, which is its cgroup id.
func ID(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Move writes pid into cgroup rel's cgroup.procs.
func (tr *Tree) Move(pid int, rel string) {
	tr.t.Helper()
	if err := os.WriteFile(filepath.Join(tr.Dir(rel), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		tr.t.Fatalf("moving %d into %s: %v", pid, rel, err)
	}
}

// Start runs a command, moves it into cgroup rel (made if needed) and
// returns it; cleanup kills it if it still runs. The command is started
// with stdin from a pipe it may wait on, returned too.
func (tr *Tree) Start(rel string, name string, args ...string) (*exec.Cmd, *os.File) {
	tr.t.Helper()
	tr.Mkdir(rel)
	cmd := exec.Command(name, args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		tr.t.Fatal(err)
	}
	cmd.Stdin = pr
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tr.t.Fatal(err)
	}
	pr.Close()
	tr.t.Cleanup(func() {
		pw.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	tr.Move(cmd.Process.Pid, rel)
	return cmd, pw
}

// Remove removes cgroup rel and those under it; their processes must have
// exited.
func (tr *Tree) Remove(rel string) {
	tr.t.Helper()
	if err := tr.removeAll(tr.Dir(rel)); err != nil {
		tr.t.Fatal(err)
	}
}

// removeAll removes cgroup directories deepest first, moving any process
// left behind (a test that failed half way) to the mount's root first.
func (tr *Tree) removeAll(root string) error {
	var dirs []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.Reverse(dirs)
	var first error
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(b)) {
				_ = os.WriteFile(filepath.Join(tr.Mount, "cgroup.procs"), []byte(pid), 0)
			}
		}
		var err error
		for range 50 { // a killed process leaves its cgroup a moment later
			if err = unix.Rmdir(d); err != unix.EBUSY {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil && err != unix.ENOENT && first == nil {
			first = fmt.Errorf("removing cgroup %s: %w", d, err)
		}
	}
	return first
}

// Layouts, as paths from the subtree's root. qos is "burstable",
// "besteffort" or "" (guaranteed: no QoS level).

// SystemdPod is a pod's container under the kubelet's systemd driver;
// prefix is the runtime's: "cri-containerd-", "crio-", "docker-".
func SystemdPod(qos, uid, prefix, id string) string {
	u := strings.ReplaceAll(uid, "-", "_")
	if qos == "" {
		return "/kubepods.slice/kubepods-pod" + u + ".slice/" + prefix + id + ".scope"
	}
	return "/kubepods.slice/kubepods-" + qos + ".slice/kubepods-" + qos + "-pod" + u + ".slice/" + prefix + id + ".scope"
}

// CgroupfsPod is a pod's container under the kubelet's cgroupfs driver;
// name is the id (containerd, Docker) or "crio-"+id.
func CgroupfsPod(qos, uid, name string) string {
	if qos == "" {
		return "/kubepods/pod" + uid + "/" + name
	}
	return "/kubepods/" + qos + "/pod" + uid + "/" + name
}

// Kubelet is a kubelet's log directory (what /var/log is on a node):
// pods/<namespace>_<pod>_<uid>/<container>/0.log and the links
// containers/<pod>_<namespace>_<container>-<id>.log to them.
type Kubelet struct {
	Dir string
	t   testing.TB
}

// NewKubelet makes an empty one in a temporary directory.
func NewKubelet(t testing.TB) *Kubelet {
	t.Helper()
	k := &Kubelet{Dir: t.TempDir(), t: t}
	for _, d := range []string{"pods", "containers"} {
		if err := os.Mkdir(filepath.Join(k.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// AddPod makes a pod's directory.
func (k *Kubelet) AddPod(ns, pod, uid string) {
	k.t.Helper()
	if err := os.MkdirAll(k.PodDir(ns, pod, uid), 0o755); err != nil {
		k.t.Fatal(err)
	}
}

// PodDir is a pod's log directory.
func (k *Kubelet) PodDir(ns, pod, uid string) string {
	return filepath.Join(k.Dir, "pods", ns+"_"+pod+"_"+uid)
}

// AddContainer makes a container's log file in its pod's directory and
// the link to it, as the kubelet does when it starts a container.
func (k *Kubelet) AddContainer(ns, pod, uid, container, id string) {
	k.t.Helper()
	dir := filepath.Join(k.PodDir(ns, pod, uid), container)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		k.t.Fatal(err)
	}
	log := filepath.Join(dir, "0.log")
	if err := os.WriteFile(log, nil, 0o644); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Symlink(log, filepath.Join(k.Dir, "containers", pod+"_"+ns+"_"+container+"-"+id+".log")); err != nil {
		k.t.Fatal(err)
	}
}

// RemovePod removes a pod's directory and its containers' links, as the
// kubelet does once the pod is deleted.
func (k *Kubelet) RemovePod(ns, pod, uid string) {
	k.t.Helper()
	links, _ := filepath.Glob(filepath.Join(k.Dir, "containers", pod+"_"+ns+"_*.log"))
	for _, l := range links {
		os.Remove(l)
	}
	if err := os.RemoveAll(k.PodDir(ns, pod, uid)); err != nil {
		k.t.Fatal(err)
	}
}
