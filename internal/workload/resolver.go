package workload

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Options configure a Resolver.
type Options struct {
	// CgroupRoot is the cgroup v2 directory paths are named from: a
	// hybrid host's /sys/fs/cgroup (its "unified" subdirectory is used), a
	// host's hierarchy mounted into a container, or a subtree. "": the
	// cgroup v2 mount in /proc/self/mountinfo.
	CgroupRoot string
	// KubeletLogs is the directory holding the kubelet's pods/ and
	// containers/ log trees; "" is /var/log. A node without them has no
	// pods, and nothing is guessed.
	KubeletLogs string
	// ProcRoot is where /proc is, for the cgroups of owners the kernel did
	// not give; "" is /proc.
	ProcRoot string
	Log      *slog.Logger
}

// Bounds.
const (
	// rescanEvery rate-limits the scans an unknown cgroup or pod triggers.
	rescanEvery = time.Second
	// maxGone bounds the cgroups (and pods, and containers) remembered
	// after they vanished from the node.
	maxGone = 4096
	// pidTTL is how long a process's cgroup read from /proc is reused: a
	// storm of resets must not cost two file reads each. maxPids bounds
	// that cache.
	pidTTL  = time.Second
	maxPids = 8192
)

// Resolver turns cgroup v2 ids into what an operator knows: the cgroup's
// path, its systemd unit, its container and the Kubernetes pod, read from
// the node itself (the cgroup tree and the kubelet's log directories; no
// API server). It keeps what it learned after the cgroup or pod is gone,
// so an owner that exited before its reset is still named. Safe for
// concurrent use.
type Resolver struct {
	root          string // cgroup v2 directory paths are named from
	mount         string // cgroup v2 mount /proc/PID/cgroup paths are under, "" when none
	podsDir       string
	containersDir string
	procRoot      string
	log           *slog.Logger
	now           func() time.Time

	mu            sync.Mutex
	cgroups       *index[uint64, string]       // id → path from root
	pods          *index[string, PodDir]       // uid → pod
	containers    *index[string, ContainerLog] // container id → its log link
	made          map[uint64]made              // id → workload, for cgroups in cgroups
	gen           uint64                       // bumped when anything is learned
	lastScan      time.Time
	lastPodScan   time.Time
	w             *watcher
	done          chan struct{}
	warnedWatches bool
	pids          map[uint32]pidCgroup // recent CgroupOfPID answers
	// changed is signalled (never blocking) when the watcher learned a
	// cgroup, pod or container: a filter by workload may select more.
	changed chan struct{}
}

type pidCgroup struct {
	comm string
	id   uint64
	at   time.Time
}

type made struct {
	w        *event.Workload
	complete bool   // nothing left to learn
	gen      uint64 // r.gen when made
}

// New scans the cgroup tree and the kubelet's directories and starts
// watching them. Close stops it.
func New(o Options) (*Resolver, error) {
	if o.KubeletLogs == "" {
		o.KubeletLogs = "/var/log"
	}
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil && o.CgroupRoot == "" {
		return nil, err
	}
	root, err := findRoot(o.CgroupRoot, mi)
	if err != nil {
		return nil, err
	}
	r := &Resolver{
		root: filepath.Clean(root), podsDir: filepath.Join(o.KubeletLogs, "pods"),
		containersDir: filepath.Join(o.KubeletLogs, "containers"),
		procRoot:      o.ProcRoot, log: o.Log, now: time.Now,
		cgroups: newIndex[uint64, string](maxGone), pods: newIndex[string, PodDir](maxGone),
		containers: newIndex[string, ContainerLog](maxGone), made: map[uint64]made{},
		pids: map[uint32]pidCgroup{}, changed: make(chan struct{}, 1),
	}
	for _, m := range ParseMountinfo(mi) {
		if m.Root == "/" && isCgroup2(m.Point) {
			r.mount = m.Point
			break
		}
	}
	if o.CgroupRoot == "" && ownCgroupNamespace(o.ProcRoot) {
		r.log.Warn("rstwatch runs in a cgroup namespace of its own, where only its own cgroups are seen: other processes' cgroups will not be named; mount the host's /sys/fs/cgroup and name it with --cgroup-root")
	}
	if r.w, err = newWatcher(); err != nil {
		r.log.Warn("cannot watch for new cgroups and pods (inotify); a cgroup made and removed between two resets will not be named", "error", err)
	}
	r.mu.Lock()
	err = r.scanCgroupsLocked()
	r.scanPodsLocked()
	r.mu.Unlock()
	if err != nil {
		r.Close()
		return nil, err
	}
	if r.w != nil {
		r.done = make(chan struct{})
		go r.watch()
	}
	return r, nil
}

// ownCgroupNamespace reports whether we are in another cgroup namespace
// than the host's init (pid 1, or kthreadd, pid 2, where pid 1 is not
// readable; both the host's with hostPID); false when it cannot tell.
func ownCgroupNamespace(procRoot string) bool {
	self, err := os.Readlink("/proc/self/ns/cgroup")
	if err != nil {
		return false
	}
	for _, pid := range []string{"1", "2"} {
		if init, err := os.Readlink(filepath.Join(procRoot, pid, "ns/cgroup")); err == nil {
			return self != init
		}
	}
	return false
}

// Root is the cgroup v2 directory paths are named from.
func (r *Resolver) Root() string { return r.root }

// Close stops watching.
func (r *Resolver) Close() error {
	if r.w == nil {
		return nil
	}
	err := r.w.f.Close()
	if r.done != nil {
		<-r.done
	}
	return err
}

// Lookup names the cgroup with this id. It returns nil for 0 (unknown) and
// a Workload with only the id when the cgroup was never seen under the
// root.
func (r *Resolver) Lookup(id uint64) *event.Workload {
	if id == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookupLocked(id)
}

func (r *Resolver) lookupLocked(id uint64) *event.Workload {
	if m, ok := r.made[id]; ok && (m.complete || m.gen == r.gen) {
		return m.w
	}
	path, ok := r.cgroups.get(id)
	if !ok && r.due(&r.lastScan) {
		if err := r.scanCgroupsLocked(); err != nil {
			r.log.Debug("scanning cgroups failed", "error", err)
		}
		path, ok = r.cgroups.get(id)
	}
	if !ok {
		// Not cached: ids outside the root, or made and removed unseen.
		return &event.Workload{Cgroup: id}
	}
	w, complete := r.build(id, path, true)
	r.made[id] = made{w: w, complete: complete, gen: r.gen}
	return w
}

// build makes the workload of a known cgroup; refresh allows one
// (rate-limited) rescan of the kubelet's directories for what is missing.
func (r *Resolver) build(id uint64, path string, refresh bool) (*event.Workload, bool) {
	p := ParsePath(path)
	w := &event.Workload{Cgroup: id, Path: path, Unit: p.Unit, UserUnit: p.UserUnit}
	if p.ContainerID != "" {
		w.Container = &event.Container{ID: p.ContainerID, Runtime: p.ContainerRuntime}
	}
	if p.PodUID == "" {
		return w, true
	}
	pod, podOK := r.pods.get(p.PodUID)
	var cl ContainerLog
	var clOK bool
	if p.ContainerID != "" {
		cl, clOK = r.containers.get(p.ContainerID)
	}
	if refresh && (!podOK || p.ContainerID != "" && !clOK) && r.due(&r.lastPodScan) {
		r.scanPodsLocked()
		pod, podOK = r.pods.get(p.PodUID)
		if p.ContainerID != "" {
			cl, clOK = r.containers.get(p.ContainerID)
		}
	}
	// A link whose target names another pod uid is not this container's
	// record (ids are unique, so this means a broken tree): believe neither.
	if clOK && cl.UID != "" && cl.UID != p.PodUID {
		clOK = false
	}
	if !podOK && clOK {
		// The link names the pod of this container id.
		pod, podOK = PodDir{Namespace: cl.Namespace, Name: cl.Pod, UID: p.PodUID}, true
	}
	if !podOK {
		return w, false
	}
	w.Pod = &event.Pod{Namespace: pod.Namespace, Name: pod.Name, UID: p.PodUID}
	if clOK && cl.Namespace == pod.Namespace && cl.Pod == pod.Name {
		w.Pod.Container = cl.Container
		w.Container.Name = cl.Container
	}
	return w, p.ContainerID == "" || w.Pod.Container != ""
}

// due reports whether a rate-limited scan may run now, and if so stamps it.
func (r *Resolver) due(last *time.Time) bool {
	now := r.now()
	if now.Sub(*last) < rescanEvery {
		return false
	}
	*last = now
	return true
}

func (r *Resolver) scanCgroupsLocked() error {
	seen := map[uint64]string{}
	err := scanTree(r.root, func(id uint64, rel string) {
		seen[id] = rel
		r.watchLocked(watched{kind: watchCgroup, dir: r.dirOf(rel), rel: rel, id: id})
	})
	if err != nil {
		return err
	}
	news, forgotten := r.cgroups.sync(seen)
	r.forgetLocked(forgotten)
	if news {
		r.gen++
	}
	return nil
}

func (r *Resolver) dirOf(rel string) string {
	if rel == "/" {
		return r.root
	}
	return r.root + rel
}

func (r *Resolver) forgetLocked(ids []uint64) {
	for _, id := range ids {
		delete(r.made, id)
	}
}

// scanPodsLocked lists the kubelet's pod directories and container links.
// Missing directories are a node without pods, not an error.
func (r *Resolver) scanPodsLocked() {
	pods := map[string]PodDir{}
	if ents, err := os.ReadDir(r.podsDir); err == nil {
		r.watchLocked(watched{kind: watchPods, dir: r.podsDir})
		for _, e := range ents {
			if pd, ok := ParsePodDir(e.Name()); ok {
				pods[pd.UID] = pd
			}
		}
	}
	ctrs := map[string]ContainerLog{}
	if ents, err := os.ReadDir(r.containersDir); err == nil {
		r.watchLocked(watched{kind: watchContainers, dir: r.containersDir})
		for _, e := range ents {
			if cl, ok := r.readContainerLog(e.Name()); ok {
				ctrs[cl.ID] = cl
			}
		}
	}
	n1, _ := r.pods.sync(pods)
	n2, _ := r.containers.sync(ctrs)
	if n1 || n2 {
		r.gen++
	}
}

func (r *Resolver) readContainerLog(name string) (ContainerLog, bool) {
	if !strings.HasSuffix(name, ".log") {
		return ContainerLog{}, false
	}
	target, err := os.Readlink(filepath.Join(r.containersDir, name))
	if err != nil {
		target = "" // not a link: the name alone
	}
	return ParseContainerLog(name, target)
}

func (r *Resolver) watchLocked(wt watched) {
	if r.w == nil {
		return
	}
	if err := r.w.add(wt); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENOENT) && !r.warnedWatches {
		r.warnedWatches = true
		r.log.Warn("cannot watch every cgroup; cgroups made and removed between two resets may not be named (raise fs.inotify.max_user_watches)", "error", err)
	}
}

// watch reads inotify events until Close.
func (r *Resolver) watch() {
	defer close(r.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.w.f.Read(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		gen := r.gen
		decode(buf[:n], r.handleLocked)
		learned := r.gen != gen
		r.mu.Unlock()
		if learned {
			select {
			case r.changed <- struct{}{}:
			default:
			}
		}
	}
}

func (r *Resolver) handleLocked(ev inotifyEvent) {
	if ev.mask&unix.IN_Q_OVERFLOW != 0 {
		// Events were dropped: the next miss rescans.
		r.lastScan, r.lastPodScan = time.Time{}, time.Time{}
		return
	}
	wt, ok := r.w.wds[ev.wd]
	if !ok {
		return
	}
	if ev.mask&unix.IN_IGNORED != 0 {
		// The directory is gone (or its watch is): keep what it named.
		delete(r.w.wds, ev.wd)
		if wt.kind == watchCgroup {
			r.forgetLocked(r.cgroups.vanish(wt.id))
		}
		return
	}
	switch wt.kind {
	case watchCgroup:
		if ev.mask&unix.IN_CREATE == 0 || ev.mask&unix.IN_ISDIR == 0 || ev.name == "" {
			return
		}
		rel := wt.rel + "/" + ev.name
		if wt.rel == "/" {
			rel = "/" + ev.name
		}
		// Its children may have been made before its watch: scan it.
		_ = scanTree(r.dirOf(rel), func(id uint64, sub string) {
			full := rel
			if sub != "/" {
				full = rel + sub
			}
			if r.cgroups.put(id, full) {
				r.gen++
			}
			r.watchLocked(watched{kind: watchCgroup, dir: r.dirOf(full), rel: full, id: id})
		})
	case watchPods:
		pd, ok := ParsePodDir(ev.name)
		if !ok {
			return
		}
		if ev.mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0 {
			r.pods.vanish(pd.UID)
		} else if r.pods.put(pd.UID, pd) {
			r.gen++
		}
	case watchContainers:
		if ev.mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0 {
			if cl, ok := ParseContainerLog(ev.name, ""); ok {
				r.containers.vanish(cl.ID)
			}
		} else if cl, ok := r.readContainerLog(ev.name); ok && r.containers.put(cl.ID, cl) {
			r.gen++
		}
	}
}

// CgroupOfPID returns the cgroup v2 id of a live process from
// /proc/PID/cgroup, or 0. comm must be the process's name as the kernel
// reported it, so that a pid reused since is not taken for it.
//
// The path there is from our cgroup namespace's root. Outside a cgroup
// namespace, or for a process inside ours, it is found under our own
// cgroup v2 mount. In a container with its own cgroup namespace (a
// DaemonSet), host processes' paths climb out of it ("/../../x"): they are
// found from the namespace root's place in the host's tree (CgroupRoot),
// which is where our mount's root directory, by its id, was seen.
func (r *Resolver) CgroupOfPID(pid uint32, comm string) uint64 {
	if pid == 0 || r.mount == "" {
		return 0
	}
	r.mu.Lock()
	c, ok := r.pids[pid]
	now := r.now()
	r.mu.Unlock()
	if ok && c.comm == comm && now.Sub(c.at) < pidTTL {
		return c.id
	}
	id := r.readCgroupOfPID(pid, comm)
	r.mu.Lock()
	if len(r.pids) >= maxPids {
		clear(r.pids)
	}
	r.pids[pid] = pidCgroup{comm: comm, id: id, at: now}
	r.mu.Unlock()
	return id
}

func (r *Resolver) readCgroupOfPID(pid uint32, comm string) uint64 {
	dir := filepath.Join(r.procRoot, strconv.FormatUint(uint64(pid), 10))
	b, err := os.ReadFile(dir + "/cgroup")
	if err != nil {
		return 0
	}
	path, ok := ParseProcCgroup(b)
	if !ok {
		return 0
	}
	var id uint64
	if climbs(path) {
		id, err = r.outsideNamespace(path)
	} else {
		id, err = inode(r.mount + path)
	}
	if err != nil || id == 0 {
		return 0
	}
	c, err := os.ReadFile(dir + "/comm")
	if err != nil || strings.TrimSuffix(string(c), "\n") != comm {
		return 0
	}
	return id
}

func climbs(path string) bool {
	for _, c := range strings.Split(path, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}

// joinNS joins a /proc path to the namespace root's path in the tree; the
// result never climbs above the tree's root.
func joinNS(nsRoot, path string) string {
	return filepath.Clean("/" + nsRoot + "/" + path)
}

func (r *Resolver) outsideNamespace(path string) (uint64, error) {
	nsID, err := inode(r.mount)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	nsRoot, ok := r.cgroups.get(nsID)
	r.mu.Unlock()
	if !ok {
		// Our namespace is not under CgroupRoot (or not a namespace at
		// all): nothing to join the path to.
		return 0, nil
	}
	return inode(r.dirOf(joinNS(nsRoot, path)))
}

// Owner names an owner's workload: from the cgroup id the kernel captured
// when it learned the owner, or, when it gave none (a socket older than
// the trace, found in /proc), from /proc while the owner lives.
func (r *Resolver) Owner(cgroup uint64, pid uint32, comm string, alive bool) *event.Workload {
	if cgroup == 0 && alive {
		cgroup = r.CgroupOfPID(pid, comm)
	}
	return r.Lookup(cgroup)
}

// Preview names the owners' workloads of a batch before any of its events
// is enriched (pipeline.Previewer): the ZooKeeper enricher, next in the
// chain, pairs each row with the other row of its reset and names that
// row's owner too, whichever of the two is enriched first.
func (r *Resolver) Preview(batch []*event.Event) {
	for _, e := range batch {
		if o := e.Owner; o != nil && o.Workload == nil {
			o.Workload = r.Owner(o.Cgroup, o.PID, o.Comm, o.Alive)
		}
	}
}

// Enrich names the owner's workload (unless Preview did), and the task's
// where its cgroup is another. It is a pipeline.Enricher.
func (r *Resolver) Enrich(_ context.Context, e *event.Event) {
	var owner uint64
	if o := e.Owner; o != nil {
		if o.Workload == nil {
			o.Workload = r.Owner(o.Cgroup, o.PID, o.Comm, o.Alive)
		}
		if o.Workload != nil {
			owner = o.Workload.Cgroup
		}
	}
	task := e.Task.Cgroup
	if task == 0 && !e.TaskIsOwner() {
		task = r.CgroupOfPID(e.Task.PID, e.Task.Comm)
	}
	if task != 0 && task != owner {
		e.Task.Workload = r.Lookup(task)
	}
}

// Changed is signalled when the watcher has learned a cgroup, a pod or a
// container since the last receive: call MatchingKnown again then.
func (r *Resolver) Changed() <-chan struct{} { return r.changed }

// Matching returns the ids of the live cgroups whose workload s selects,
// after a fresh scan.
func (r *Resolver) Matching(s Selector) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.scanCgroupsLocked(); err != nil {
		r.log.Debug("scanning cgroups failed", "error", err)
	}
	r.scanPodsLocked()
	r.lastScan, r.lastPodScan = r.now(), r.now()
	return r.matchingLocked(s)
}

// MatchingKnown is Matching over what is known, without a scan.
func (r *Resolver) MatchingKnown(s Selector) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.matchingLocked(s)
}

func (r *Resolver) matchingLocked(s Selector) []uint64 {
	var ids []uint64
	var all []uint64
	r.cgroups.live(func(id uint64, _ string) { all = append(all, id) })
	for _, id := range all {
		if s.Match(r.lookupLocked(id)) {
			ids = append(ids, id)
		}
	}
	return ids
}
