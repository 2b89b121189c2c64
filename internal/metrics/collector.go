package metrics

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/tracer"
)

// Source is the kernel side: *tracer.Tracer opened with Aggregate.
type Source interface {
	Counts() ([]tracer.Count, error)
	Stats() (tracer.Stats, error)
	ForgetOwner(pid uint32) error
	ProgramStats() ([]tracer.ProgramStat, error)
}

// Options configure a Collector.
type Options struct {
	Limits Limits
	ZK     ZK // optional
	// SelfPID is rstwatch's own pid: ZooKeeper rows it owns are its own
	// probe connections, which it must not report. 0 keeps them.
	SelfPID uint32
	// ProcRoot is where /proc is, to tell which owners have exited; "" is
	// "/proc". It must show the host's pids (hostPID in Kubernetes), or
	// live owners would be taken for dead and forgotten.
	ProcRoot string
	// VerdictBudget bounds how long one collection may wait for ZooKeeper
	// probes on a cold cache; 1 s when 0. A row judged after the budget
	// gets UNKNOWN for that growth only.
	VerdictBudget time.Duration
	// StatsEnabled reports whether BPF run-time statistics are on (by
	// --bpf-stats); the sysctl is checked as well.
	StatsEnabled func() bool
	// Workload names the workload (pod, container, unit) of a row's owner,
	// for the namespace, pod, container and unit labels; optional. It is
	// asked only for rows that grew.
	Workload func(*tracer.Count) *event.Workload
	Log      *slog.Logger
}

// forgetBudget bounds the time one sync spends deleting exited owners.
const forgetBudget = 200 * time.Millisecond

// Collector is a prometheus.Collector that reads the kernel's aggregates
// on every scrape. Safe for concurrent use.
type Collector struct {
	o Options

	mu      sync.Mutex
	src     Source // nil after Detach
	resets  *resets
	stats   tracer.Stats // the last read, kept after Detach
	progs   []tracer.ProgramStat
	errs    map[string]uint64 // what failed to read → times
	forgets uint64
}

// NewCollector returns a Collector over src.
func NewCollector(src Source, o Options) *Collector {
	if o.ProcRoot == "" {
		o.ProcRoot = "/proc"
	}
	if o.VerdictBudget <= 0 {
		o.VerdictBudget = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Collector{o: o, src: src, resets: newResets(o.Limits), errs: map[string]uint64{}}
}

// Detach stops reading the kernel, before the tracer is closed; the
// counters read so far are still served.
func (c *Collector) Detach() {
	c.mu.Lock()
	c.src = nil
	c.mu.Unlock()
}

// Sync reads the kernel's rows into the Go-side totals and forgets the
// rows of owners that have exited, so that the kernel map keeps room for
// the living. Collect calls it; Run calls it between scrapes.
func (c *Collector) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncLocked(ctx)
}

func (c *Collector) syncLocked(ctx context.Context) error {
	if c.src == nil {
		return nil
	}
	var errs []error
	fail := func(what string, err error) {
		c.errs[what]++
		errs = append(errs, err)
	}
	if st, err := c.src.Stats(); err != nil {
		fail("stats", err)
	} else {
		c.stats = st
	}
	if ps, err := c.src.ProgramStats(); err != nil {
		fail("program_stats", err)
	} else {
		c.progs = ps
	}
	rows, err := c.src.Counts()
	if err != nil {
		fail("counts", err)
		return errors.Join(errs...)
	}
	vctx, cancel := context.WithTimeout(ctx, c.o.VerdictBudget)
	defer cancel()
	c.resets.observe(rows,
		func(r *tracer.Count) string { return verdictOf(vctx, c.o.ZK, r) },
		func(r *tracer.Count) bool { return ownProbe(c.o.ZK, c.o.SelfPID, r) },
		c.o.Workload)

	// ForgetOwner walks the whole kernel map per pid, so a burst of
	// short-lived owners is forgotten over several syncs rather than
	// holding up one scrape.
	deadline := time.Now().Add(forgetBudget)
	for _, pid := range c.exited(rows) {
		if time.Now().After(deadline) {
			break
		}
		if err := c.src.ForgetOwner(pid); err != nil {
			fail("forget_owner", err)
			continue
		}
		c.resets.forget(pid)
		c.forgets++
	}
	return errors.Join(errs...)
}

// SentByNetNS reads the kernel's rows and returns the resets sent in each
// network namespace since start, which never go down (the rows of exited
// owners are forgotten in the kernel, not here): for the comparison with
// the kernel's own OutRsts counters.
func (c *Collector) SentByNetNS(ctx context.Context) (map[uint32]uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.syncLocked(ctx)
	out := make(map[uint32]uint64, len(c.resets.sent))
	for ns, n := range c.resets.sent {
		out[ns] = n
	}
	return out, err
}

// exited lists the owners of rows whose process is gone.
func (c *Collector) exited(rows []tracer.Count) []uint32 {
	var dead []uint32
	for i := range rows {
		pid := rows[i].OwnerPID
		if pid == 0 || rows[i].Overflow || slices.Contains(dead, pid) {
			continue
		}
		if _, err := os.Stat(c.o.ProcRoot + "/" + strconv.FormatUint(uint64(pid), 10)); errors.Is(err, os.ErrNotExist) {
			dead = append(dead, pid)
		}
	}
	return dead
}

// Run syncs every interval until ctx ends, so that exited owners are
// forgotten even when nobody scrapes.
func (c *Collector) Run(ctx context.Context, every time.Duration) {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			if err := c.Sync(ctx); err != nil {
				c.o.Log.Warn("reading the kernel aggregates failed", "error", err)
			}
		}
	}
}

// Describe sends nothing: the label sets are only known once read, and an
// unchecked collector is what client_golang offers for that.
func (c *Collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the kernel and sends every metric.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.syncLocked(context.Background()); err != nil {
		c.o.Log.Warn("reading the kernel aggregates failed", "error", err)
	}
	c.collectResets(ch)
	c.collectKernel(ch)
	c.collectZK(ch)
}

var (
	descResets = prometheus.NewDesc("rstwatch_resets_total",
		"TCP resets sent or received by this host. owner_comm is the owning process's name (\"unknown\" when none was known), zk_endpoint the ZooKeeper server endpoint (empty when not ZooKeeper), verdict the ZOOKEEPER-1702 verdict (\"none\" when not ZooKeeper); namespace, pod and container name the owner's Kubernetes pod and container (container: the container's short id when its name is unknown), unit its systemd unit when it is not in a container (each empty when unknown). Values past the caps are folded into \"other\".",
		[]string{"direction", "reason", "owner_comm", "zk_endpoint", "verdict", "namespace", "pod", "container", "unit"}, nil)
	descOwnerUnknown = prometheus.NewDesc("rstwatch_owner_unknown_total",
		"Resets for which no owning process was known (the socket predates rstwatch, or no local socket existed, as for a refused connect).", nil, nil)
	descLabelOverflow = prometheus.NewDesc("rstwatch_label_overflow_total",
		"Resets whose label value was folded into \"other\" because the cap on distinct values (owner_comm, zk_endpoint, namespace, pod, container, unit) or on series was reached.", []string{"label"}, nil)
	descSelf = prometheus.NewDesc("rstwatch_own_probe_resets_total",
		"Resets on rstwatch's own ZooKeeper probe connections, left out of rstwatch_resets_total.", nil, nil)
	descForgotten = prometheus.NewDesc("rstwatch_owners_forgotten_total",
		"Exited owners whose kernel rows were folded into the Go-side totals and deleted to keep the kernel map from filling.", nil, nil)
	descReadErrors = prometheus.NewDesc("rstwatch_read_errors_total",
		"Failures to read the kernel's counters, by what was read.", []string{"what"}, nil)
)

func (c *Collector) collectResets(ch chan<- prometheus.Metric) {
	for s, v := range c.resets.totals {
		ch <- prometheus.MustNewConstMetric(descResets, prometheus.CounterValue, float64(v),
			s.direction, s.reason, s.comm, s.zkEndpoint, s.verdict, s.namespace, s.pod, s.container, s.unit)
	}
	ch <- prometheus.MustNewConstMetric(descOwnerUnknown, prometheus.CounterValue, float64(c.resets.ownerUnknown))
	for label, v := range c.resets.folded {
		ch <- prometheus.MustNewConstMetric(descLabelOverflow, prometheus.CounterValue, float64(v), label)
	}
	ch <- prometheus.MustNewConstMetric(descSelf, prometheus.CounterValue, float64(c.resets.self))
	ch <- prometheus.MustNewConstMetric(descForgotten, prometheus.CounterValue, float64(c.forgets))
	for what, v := range c.errs {
		ch <- prometheus.MustNewConstMetric(descReadErrors, prometheus.CounterValue, float64(v), what)
	}
}
