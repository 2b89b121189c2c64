// Package tracer loads rstwatch's BPF programs, attaches them to the TCP
// reset tracepoints (and the ones owner attribution needs), reads the ring
// buffer and decodes records into event.Event.
package tracer

import (
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Defaults sized for a reset storm on a small host: ~160-byte records at
// 250k/s fill 8 MiB in ~200 ms, far longer than a poll interval.
const (
	DefaultRingBufferSize = 8 << 20
	DefaultPollInterval   = 5 * time.Millisecond
	DefaultOwnerTableSize = 131072
)

// Config selects what the programs report. Zero values mean "everything".
type Config struct {
	RingBufferSize int           // bytes, a power of two and a multiple of the page size
	PollInterval   time.Duration // how often the reader drains the ring without a wake-up
	WakeupPerEvent bool          // wake the reader for every record (latency over throughput)
	PID            uint32        // report only resets whose owner or task is this process
	Ports          []uint16      // report only resets whose local or remote port is one of these
	NetNS          uint32        // report only resets in this network namespace (inode)
	// Cgroups, when set, reports only resets whose owner's cgroup (as
	// captured when the owner was learned) or whose task's cgroup is one
	// of these cgroup v2 ids (the inode number of the cgroup's directory).
	Cgroups []uint64
	// FilterCgroups filters by Cgroups even while the set is empty: more
	// are added with AddCgroups as the workloads they belong to appear.
	FilterCgroups  bool
	OwnerTableSize int // slots for live sockets' owners (4-way buckets, rounded up to a power of two); the 4-tuple cache has half as many
	// Aggregate counts resets in a kernel map keyed by direction, reason,
	// owner, owner's cgroup, network namespace and ZooKeeper endpoint;
	// Events streams every reset through the ring buffer. At least one
	// must be set.
	Aggregate bool
	NoEvents  bool
	// ZKPorts are ZooKeeper client ports: they key the aggregation, and
	// every connection made to or accepted on one is reported to
	// Callbacks.Connect (also when only aggregating).
	ZKPorts []uint16
	// ClassicTracepoints attaches classic tracepoint programs even where
	// the cheaper BTF-typed ones load: for comparison and tests.
	ClassicTracepoints bool
	// SeedInterval is how often the owners of sockets the programs did not
	// see being made are read from every process's open files (they are
	// read once at start regardless); 0 is DefaultSeedInterval, negative
	// only at start.
	SeedInterval time.Duration
	// AllSenders also loads the packet-level view (see senders.go): resets
	// that the TCP stack did not make, reported with their sender. Where
	// it cannot load, Degraded says so and the rest still runs.
	AllSenders      bool
	SendersRingSize int // bytes; DefaultSendersRingSize when 0
	// LocalAddr, when set, says whether an address is one of this host's
	// (in any namespace). It turns on the pairing of received resets with
	// the local TCP sends that explain them (see pairing.go). It is called
	// on the read loop's goroutine and must not block.
	LocalAddr func(netip.Addr) bool
	Logger    *slog.Logger
}

// Tracer is a loaded and attached set of programs. Close detaches them.
type Tracer struct {
	cfg      Config
	coll     *ebpf.Collection
	fentry   *ebpf.Collection   // pre-6.10 fallback for resets the tracepoint misses
	extra    []*ebpf.Collection // programs loaded on their own (fallbacks, the iterator)
	seeder   *ebpf.Program      // the socket iterator, nil where it does not load
	points   []attached
	objs     rstwatchMaps
	vars     rstwatchVariables
	links    []link.Link
	reasons  reasonNames
	clock    clockOffset
	degraded []string
	log      *slog.Logger
	senders  *senders // nil unless Config.AllSenders and it loaded

	stopSeeding chan struct{}
	seedingDone chan struct{}
}

// AttachPoint is a tracepoint a program attaches to. rstwatch still reports
// resets without the optional ones, with less attribution: Lost says what.
type AttachPoint struct {
	Group, Name string
	prog        string
	Required    bool
	Lost        string
}

var attachPoints = []AttachPoint{
	{"tcp", "tcp_send_reset", "rstwatch_send_reset", true, ""},
	{"tcp", "tcp_receive_reset", "rstwatch_receive_reset", true, ""},
	{"sock", "inet_sock_set_state", "rstwatch_set_state", false, "the owners of connecting and listening sockets"},
	{"tcp", "tcp_destroy_sock", "rstwatch_destroy_sock", false, "sockets being destroyed (a reused socket may show its previous owner)"},
	{"syscalls", "sys_exit_accept4", "rstwatch_accept4", false, "the owners of sockets accepted with accept4()"},
	{"syscalls", "sys_exit_accept", "rstwatch_accept", false, "the owners of sockets accepted with accept()"},
	{"sched", "sched_process_exit", "rstwatch_exit", false, "owners exiting (an owner that exited is shown as alive)"},
}

// AttachPoints lists the tracepoints rstwatch uses.
func AttachPoints() []AttachPoint { return slices.Clone(attachPoints) }

// Open loads and attaches the programs, then names the owners of the
// sockets that already exist.
func Open(cfg Config) (*Tracer, error) {
	if cfg.RingBufferSize == 0 {
		cfg.RingBufferSize = DefaultRingBufferSize
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.OwnerTableSize == 0 {
		cfg.OwnerTableSize = DefaultOwnerTableSize
	}
	if cfg.SeedInterval == 0 {
		cfg.SeedInterval = DefaultSeedInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkRingSize(cfg.RingBufferSize); err != nil {
		return nil, err
	}
	if cfg.NoEvents && !cfg.Aggregate {
		return nil, errors.New("tracer: nothing to do: neither events nor aggregation requested")
	}
	if len(cfg.Cgroups) > maxCgroups {
		return nil, fmt.Errorf("tracer: %d cgroups to filter by, at most %d", len(cfg.Cgroups), maxCgroups)
	}
	if p := CheckPrivileges(); !p.OK {
		return nil, &SetupError{Msg: "not enough privileges to load BPF programs (" + p.Detail + "): " + privilegeFix}
	}
	if err := ensureTracefs(cfg.Logger); err != nil {
		return nil, err
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, explain("raising the locked-memory limit", err)
	}

	spec, err := loadRstwatch()
	if err != nil {
		return nil, fmt.Errorf("tracer: reading the embedded BPF object: %w", err)
	}
	kspec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, &SetupError{Msg: "the kernel has no BTF (/sys/kernel/btf/vmlinux): rstwatch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y", Detail: err}
	}

	t := &Tracer{cfg: cfg, reasons: kernelReasonNames(kspec), log: cfg.Logger}
	if err := t.configure(spec); err != nil {
		return nil, err
	}
	// The programs loaded on their own (fentry fallback, iterator,
	// classic replacements) take a copy of the object with every program.
	full := spec.Copy()
	for name := range spec.Programs {
		if fentryProgram(name) || name == rstwatchProgRstwatchSeed {
			delete(spec.Programs, name)
		}
	}

	// Programs are chosen and the ones not wanted removed before the load,
	// so that an optional one this kernel rejects cannot fail the whole
	// collection. If the typed programs do not load, the classic ones do.
	typed := !cfg.ClassicTracepoints
	main := spec.Copy()
	if err := t.choosePrograms(main, kspec, typed); err != nil {
		return nil, err
	}
	coll, err := t.load(main, kspec)
	if err != nil && t.usesTyped() {
		t.log.Debug("BTF-typed programs did not load; using classic tracepoints", "error", err)
		t.degraded = append(t.degraded, fmt.Sprintf("the BTF-typed programs did not load (%v): classic tracepoints are used, which cost more per event", err))
		main = spec.Copy()
		if err := t.choosePrograms(main, kspec, false); err != nil {
			return nil, err
		}
		coll, err = t.load(main, kspec)
	}
	if err != nil {
		return nil, explain("loading the BPF programs", err)
	}
	t.coll = coll
	// Assign moves the maps out of the collection: take the set that the
	// programs loaded on their own share first.
	shared := map[string]*ebpf.Map{}
	for name, m := range coll.Maps {
		if name != ".rodata" {
			shared[name] = m
		}
	}
	if err = coll.Assign(&t.objs); err == nil {
		err = coll.Assign(&t.vars)
	}
	if err != nil {
		t.Close()
		return nil, fmt.Errorf("tracer: %w", err)
	}
	if err := t.fillFilters(); err != nil {
		t.Close()
		return nil, err
	}
	if cfg.Aggregate {
		// The overflow key (all zero) must exist before the map can fill.
		var zero rstwatchAggKey
		cpus, err := ebpf.PossibleCPU()
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("tracer: counting CPUs: %w", err)
		}
		if err := t.objs.Counts.Update(&zero, make([]uint64, cpus), ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
			t.Close()
			return nil, fmt.Errorf("tracer: creating the overflow counter: %w", err)
		}
	}
	if err := t.attach(full, kspec, shared); err != nil {
		t.Close()
		return nil, err
	}
	if missesPassiveResets(kspec) {
		t.attachFentry(full, kspec, shared)
	}
	t.clock = newClockOffset()

	// Seeded after attaching: a socket made in between is learned by the
	// programs, and their owners are never replaced by the iterator's.
	t.loadSeeder(full, kspec, shared)
	if t.seeder != nil {
		if err := t.Seed(); err != nil {
			t.degraded = append(t.degraded, fmt.Sprintf("reading the open sockets failed (%v): %s", err, seedLost))
		} else if cfg.SeedInterval > 0 {
			t.stopSeeding, t.seedingDone = make(chan struct{}), make(chan struct{})
			go t.seedLoop(cfg.SeedInterval, t.stopSeeding, t.seedingDone)
		}
	}
	if cfg.AllSenders {
		s, partial, err := openSenders(cfg, kspec, cfg.Logger)
		switch {
		case err != nil:
			t.degraded = append(t.degraded, fmt.Sprintf("the packet-level view (--all-senders) cannot run here: %v: %s", err, sendersLost))
		case partial != "":
			t.degraded = append(t.degraded, partial)
		}
		t.senders = s
	}
	// The kernel's BTF, parsed into tens of MB, is needed only to load
	// and attach: hand the heap it leaves back to the system now, or a
	// tracer left running keeps it resident (the runtime returns freed
	// memory only slowly).
	debug.FreeOSMemory()
	return t, nil
}

// tupleWays and sockWays are TUPLE_WAYS and SOCK_WAYS in bpf/ebpf/owner.h:
// slots per bucket of the 4-tuple cache and of the live sockets' owners.
const (
	tupleWays = 4
	sockWays  = 4
)

// buckets is how many buckets of ways slots hold at least slots (at least
// one), a power of two: the programs mask a hash with it minus one.
func buckets(slots, ways int) uint32 {
	return uint32(1) << bits.Len32(uint32(max(slots/ways, 1))-1)
}

// portReport and portZK are PORT_REPORT and PORT_ZK in bpf/ebpf/common.h:
// which of the two port bitmaps.
const (
	portReport = 0
	portZK     = 1
)

// maxCgroups is the size of the kernel's cgroup filter.
const maxCgroups = 1024

// configure sizes the maps and sets the programs' constants.
func (t *Tracer) configure(spec *ebpf.CollectionSpec) error {
	cfg := t.cfg
	spec.Maps[rstwatchMapEvents].MaxEntries = uint32(cfg.RingBufferSize)
	// Both owner tables have 4-way buckets indexed by a hash masked to
	// their number, a power of two: as many slots as the owner table size
	// for live sockets (a socket can find its bucket full before the table
	// is: at the default size ~0.08% of them with 20k sockets live, ~0.8%
	// with 40k, counted), half as many for closed connections, whose
	// oldest entries are replaced.
	sockBuckets := buckets(cfg.OwnerTableSize, sockWays)
	spec.Maps[rstwatchMapOwnerBySock].MaxEntries = sockBuckets
	tupleBuckets := buckets(cfg.OwnerTableSize/2, tupleWays)
	spec.Maps[rstwatchMapOwnerByTuple].MaxEntries = tupleBuckets
	if !cfg.Aggregate {
		spec.Maps[rstwatchMapCounts].MaxEntries = 1
	}
	if cfg.NoEvents {
		// Only the rare ZooKeeper connect records go through the ring
		// buffer; it must exist for the programs to load either way.
		spec.Maps[rstwatchMapEvents].MaxEntries = uint32(max(os.Getpagesize(), noEventsRingSize))
	}
	consts := map[string]any{
		"filter_pid":        cfg.PID,
		"filter_netns":      cfg.NetNS,
		"filter_ports":      len(cfg.Ports) > 0,
		"filter_cgroups":    len(cfg.Cgroups) > 0 || cfg.FilterCgroups,
		"emit_events":       !cfg.NoEvents,
		"aggregate":         cfg.Aggregate,
		"zk_connects":       len(cfg.ZKPorts) > 0,
		"wakeup_bytes":      uint64(0),
		"tuple_bucket_mask": tupleBuckets - 1,
		"sock_bucket_mask":  sockBuckets - 1,
	}
	if !cfg.WakeupPerEvent {
		consts["wakeup_bytes"] = uint64(spec.Maps[rstwatchMapEvents].MaxEntries / 4)
	}
	for name, v := range consts {
		if err := spec.Variables[name].Set(v); err != nil {
			return fmt.Errorf("tracer: setting %s: %w", name, err)
		}
	}
	return nil
}

// noEventsRingSize holds a burst of ZooKeeper connect records when only
// aggregating.
const noEventsRingSize = 64 << 10

// load loads a collection, logging the verifier's reasons at debug level.
func (t *Tracer) load(spec *ebpf.CollectionSpec, kspec *btf.Spec) (*ebpf.Collection, error) {
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs: ebpf.ProgramOptions{KernelTypes: kspec},
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.log.Debug("verifier log", "log", fmt.Sprintf("%+v", ve))
		}
	}
	return coll, err
}

func fentryProgram(name string) bool {
	return name == rstwatchProgRstwatchFentryV4SendReset || name == rstwatchProgRstwatchFentryV6SendReset
}

// missesPassiveResets reports the pre-6.10 tcp_send_reset, which fires only
// for active resets: the layout without a reason field came with it.
func missesPassiveResets(kspec *btf.Spec) bool {
	var st *btf.Struct
	return kspec.TypeByName("trace_event_raw_tcp_send_reset", &st) != nil
}

// attachFentry loads and attaches the fallback for resets sent without a
// full socket on kernels whose tracepoint misses them. Failure is not
// fatal: Degraded says what is then not seen.
func (t *Tracer) attachFentry(full *ebpf.CollectionSpec, kspec *btf.Spec, replace map[string]*ebpf.Map) {
	const lost = "resets sent without a full socket (refused connects, data for closed or timewait connections) are not seen as sent on this kernel; they still show as received on a local peer"
	spec := full.Copy()
	for name := range spec.Programs {
		if !fentryProgram(name) {
			delete(spec.Programs, name)
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{
		Programs:        ebpf.ProgramOptions{KernelTypes: kspec},
		MapReplacements: replace,
	})
	if err != nil {
		t.degraded = append(t.degraded, fmt.Sprintf("fentry on tcp_v4/v6_send_reset refused (%v): %s", err, lost))
		return
	}
	t.fentry = coll
	attached := 0
	for name, prog := range coll.Programs {
		l, err := link.AttachTracing(link.TracingOptions{Program: prog})
		if err != nil {
			t.degraded = append(t.degraded, fmt.Sprintf("attaching %s failed (%v): %s", name, err, lost))
			continue
		}
		t.links = append(t.links, l)
		attached++
	}
	if attached == len(coll.Programs) {
		if err := t.vars.PassiveByFentry.Set(uint32(1)); err != nil {
			t.degraded = append(t.degraded, fmt.Sprintf("enabling the fentry fallback failed (%v): %s", err, lost))
		}
	}
}

// UsesFentryFallback says whether resets the tracepoint misses are caught by
// fentry programs on this kernel.
func (t *Tracer) UsesFentryFallback() bool {
	var v uint32
	return t.vars.PassiveByFentry != nil && t.vars.PassiveByFentry.Get(&v) == nil && v == 1
}

// fillFilters writes the port and cgroup sets the programs look up.
func (t *Tracer) fillFilters() error {
	// Two bitmaps of 1024 words (port_has in common.h).
	words := map[uint32]uint64{}
	set := func(bitmap uint32, p uint16) { words[bitmap<<10|uint32(p>>6)] |= 1 << (p & 63) }
	for _, p := range t.cfg.Ports {
		set(portReport, p)
	}
	for _, p := range t.cfg.ZKPorts {
		set(portZK, p)
	}
	for k, w := range words {
		if err := t.objs.Ports.Put(k, w); err != nil {
			return fmt.Errorf("tracer: setting the port filters: %w", err)
		}
	}
	for _, id := range t.cfg.Cgroups {
		if err := t.objs.Cgroups.Put(id, uint8(1)); err != nil {
			return fmt.Errorf("tracer: setting cgroup filter %d: %w", id, err)
		}
	}
	return nil
}

// AddCgroups adds cgroup v2 ids to the kernel's cgroup filter (Config.Cgroups)
// while the programs run: a container or unit started after the trace.
func (t *Tracer) AddCgroups(ids ...uint64) error {
	for _, id := range ids {
		if err := t.objs.Cgroups.Put(id, uint8(1)); err != nil {
			return fmt.Errorf("tracer: adding cgroup %d to the filter (at most %d): %w", id, maxCgroups, err)
		}
	}
	return nil
}

// Degraded lists what this kernel did not allow, for doctor and the log.
func (t *Tracer) Degraded() []string { return t.degraded }

// ReportsReasons says whether the kernel names the reason of sent resets.
func (t *Tracer) ReportsReasons() bool { return len(t.reasons) > 0 }

// Close detaches every program and frees the maps. It is safe to call more
// than once and on a partly opened tracer.
func (t *Tracer) Close() error {
	if t.stopSeeding != nil {
		close(t.stopSeeding)
		<-t.seedingDone
		t.stopSeeding = nil
	}
	var errs []error
	if t.senders != nil {
		errs = append(errs, t.senders.close())
		t.senders = nil
	}
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	t.links = nil
	errs = append(errs, t.objs.Close())
	for _, c := range append([]*ebpf.Collection{t.fentry, t.coll}, t.extra...) {
		if c != nil {
			c.Close()
		}
	}
	t.fentry, t.coll, t.extra, t.seeder = nil, nil, nil, nil
	return errors.Join(errs...)
}

// Stats are the programs' own counters, summed over CPUs.
type Stats struct {
	Seen     uint64 // resets seen by the programs, before filters
	Emitted  uint64 // records written to the ring buffer
	Lost     uint64 // records dropped because the ring buffer was full
	Filtered uint64 // resets dropped by the pid/port/netns filters
	AggFull  uint64 // resets folded into the overflow aggregate
	// OwnerFull counts sockets whose owner could not be remembered because
	// their bucket of the owner table (--owner-table-size) was full: their
	// resets show no owner unless a later scan of open files names one.
	OwnerFull uint64
	// Connects counts ZooKeeper connect records written (Config.ZKPorts),
	// ConnectsLost those dropped because the ring buffer was full (nobody
	// read it, or not fast enough). Resets are not affected: Lost counts
	// reset records only.
	Connects     uint64
	ConnectsLost uint64
	// AbortsRetracted counts receive events that were the kernel aborting
	// a socket shut down for reading because data arrived
	// (TCP_ABORT_ON_DATA), not resets received: not reported, and taken
	// back from the in-kernel counts.
	AbortsRetracted uint64
}

// lost reads only the drop counter: the read loop checks it every pass.
func (t *Tracer) lost() (uint64, error) {
	return t.stat(rstwatchStatIndexSTAT_LOST)
}

// stat sums one per-CPU counter.
func (t *Tracer) stat(i rstwatchStatIndex) (uint64, error) {
	var per []uint64
	if err := t.objs.Stats.Lookup(uint32(i), &per); err != nil {
		return 0, fmt.Errorf("tracer: reading counter %d: %w", i, err)
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}

// Stats reads the per-CPU counters.
func (t *Tracer) Stats() (Stats, error) {
	var s Stats
	dst := []*uint64{&s.Seen, &s.Emitted, &s.Lost, &s.Filtered, &s.AggFull, &s.OwnerFull, &s.Connects, &s.ConnectsLost, &s.AbortsRetracted}
	for i, d := range dst {
		n, err := t.stat(rstwatchStatIndex(i))
		if err != nil {
			return s, err
		}
		*d = n
	}
	return s, nil
}

func checkRingSize(n int) error {
	page := os.Getpagesize()
	if n < page || n&(n-1) != 0 {
		return fmt.Errorf("ring buffer size %d: must be a power of two and at least %d bytes", n, page)
	}
	return nil
}

// tracefs roots cilium/ebpf looks under, in its order.
var tracefsRoots = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// TracepointExists reports whether tracefs lists the tracepoint.
func TracepointExists(group, name string) bool {
	for _, root := range tracefsRoots {
		if _, err := os.Stat(root + "/events/" + group + "/" + name + "/id"); err == nil {
			return true
		}
	}
	return false
}

// TracefsMounted reports whether a tracefs with the TCP events is reachable.
func TracefsMounted() bool {
	for _, root := range tracefsRoots {
		if _, err := os.Stat(root + "/events"); err == nil {
			return true
		}
	}
	return false
}

// TracefsUnreadable reports a tracefs that is mounted but closed to this
// user (it is mode 0700): a privilege problem, not a missing mount.
func TracefsUnreadable() bool {
	_, err := os.Stat(tracefsRoots[0] + "/events")
	return errors.Is(err, os.ErrPermission)
}

// ensureTracefs mounts tracefs where the kernel has it but nobody mounted it:
// attaching to a tracepoint needs its id file.
func ensureTracefs(log *slog.Logger) error {
	if TracefsMounted() {
		return nil
	}
	if err := unix.Mount("tracefs", tracefsRoots[0], "tracefs", 0, ""); err != nil {
		return &SetupError{Msg: fmt.Sprintf("tracefs is not mounted and mounting it failed (%v): run `mount -t tracefs tracefs /sys/kernel/tracing` as root", err), Detail: err}
	}
	log.Info("mounted tracefs", "path", tracefsRoots[0])
	return nil
}

// clockOffset converts bpf_ktime_get_ns (CLOCK_MONOTONIC) to wall time.
type clockOffset struct{ wallMinusMono int64 }

func newClockOffset() clockOffset {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return clockOffset{time.Now().UnixNano() - ts.Nano()}
}

func (c clockOffset) wall(mono uint64) time.Time {
	return time.Unix(0, int64(mono)+c.wallMinusMono)
}
