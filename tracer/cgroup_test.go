package tracer

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/testenv"
)

// cgroup2Root is where the unified (v2) hierarchy is mounted: /sys/fs/cgroup
// on a pure v2 host, /sys/fs/cgroup/unified on a hybrid one like this.
func cgroup2Root(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... mount-point ... - fstype source options
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if ok && strings.HasPrefix(post, "cgroup2 ") {
			return strings.Fields(pre)[4]
		}
	}
	t.Fatal("no cgroup2 hierarchy is mounted")
	return ""
}

// inCgroup makes a cgroup v2 directory, moves the agent into it, and
// returns the cgroup's id: the inode number of its directory, as
// bpf_get_current_cgroup_id reports it.
func inCgroup(t *testing.T, a *agent) uint64 {
	t.Helper()
	root := cgroup2Root(t)
	dir := filepath.Join(root, fmt.Sprintf("rstwatch-test-%d-%d", os.Getpid(), a.pid))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Out of the cgroup first: a cgroup with processes is not removed.
		a.kill()
		_ = os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(strconv.Itoa(int(a.pid))), 0)
		for range 50 {
			if err := os.Remove(dir); err == nil || os.IsNotExist(err) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cgroup %s not removed", dir)
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(int(a.pid))), 0); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Owners and tasks carry the cgroup v2 id the kernel saw (the owner's when
// it was learned); the cgroup filter keeps resets whose owner or task is in
// one of the cgroups, in the kernel; aggregates are keyed by the owner's
// cgroup and namespace.
func TestCgroups(t *testing.T) {
	testenv.RequireBPF(t)
	s := startAgent(t, "rstw-incgroup", "")
	id := inCgroup(t, s)
	c := startAgent(t, "rstw-client", "")
	o1 := startAgent(t, "rstw-other", "")
	o2 := startAgent(t, "rstw-other", "")

	col := startCollector(t, Config{Cgroups: []uint64{id}})
	agg, err := Open(Config{Aggregate: true, NoEvents: true})
	if err != nil {
		t.Fatal(err)
	}
	defer agg.Close()

	// The client aborts a connection to the server in the cgroup: the
	// client's sent reset is neither the cgroup's task nor owner; the
	// server's received one is owned in the cgroup.
	srv := addrPort(t, s.do("listen 127.0.0.1:0")[0])
	cli := addrPort(t, c.do("connect %s", srv)[0])
	s.do("accept")
	c.do("linger0")
	c.do("close")
	// The server in the cgroup aborts a connection itself: owner and task.
	cli2 := addrPort(t, c.do("connect %s", srv)[0])
	s.do("accept")
	s.do("linger0")
	s.do("close")
	// Nothing to do with the cgroup.
	osrv := addrPort(t, o1.do("listen 127.0.0.1:0")[0])
	o2.do("connect %s", osrv)
	o1.do("accept")
	o2.do("linger0")
	o2.do("close")

	got := col.find(t, event.Receive, srv, cli)
	if got.Owner == nil || got.Owner.PID != s.pid || got.Owner.Cgroup != id {
		t.Errorf("received in the cgroup: owner %+v, want %d in cgroup %d", got.Owner, s.pid, id)
	}
	sent := col.find(t, event.Send, srv, cli2)
	if sent.Owner == nil || sent.Owner.Cgroup != id || sent.Task.PID != s.pid || sent.Task.Cgroup != id {
		t.Errorf("sent from the cgroup: owner %+v task %+v, want both in cgroup %d", sent.Owner, sent.Task, id)
	}
	time.Sleep(200 * time.Millisecond)
	col.mu.Lock()
	for _, e := range col.events {
		if e.Task.Cgroup != id && (e.Owner == nil || e.Owner.Cgroup != id) {
			t.Errorf("the cgroup filter let through %s %s -> %s (task %d/%d, owner %+v)",
				e.Direction, e.Local, e.Remote, e.Task.PID, e.Task.Cgroup, e.Owner)
		}
	}
	col.mu.Unlock()

	counts, err := agg.Counts()
	if err != nil {
		t.Fatal(err)
	}
	var inCg, elsewhere uint64
	for _, n := range counts {
		switch n.OwnerPID {
		case s.pid:
			if n.OwnerCgroup == id && n.NetNS == nsInode(t, "") {
				inCg += n.Count
			}
		case c.pid:
			if n.OwnerCgroup != id && n.OwnerCgroup != 0 {
				elsewhere += n.Count
			}
		}
	}
	if inCg < 2 || elsewhere < 1 {
		t.Fatalf("aggregated %d resets owned in cgroup %d (want 2+) and %d elsewhere (want 1+): %+v", inCg, id, elsewhere, counts)
	}
}
