package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rstwatch/rstwatch/internal/reconcile"
)

// KernelCounters exports each network namespace's own TCP reset counters
// (Tcp OutRsts, the TcpExt aborts) next to rstwatch's, always on: they cost
// two small /proc reads per namespace per scrape, nothing per reset.
// Counted from when serve started (a namespace first seen later: from when
// it was made), and kept when a namespace goes away, so that they never go
// down. At most DefaultNetNS namespaces get a label of their own; the rest
// are summed under netns="other".
type KernelCounters struct {
	kernel *reconcile.Kernel
	// traced, when set, gives the resets traced as sent per namespace since
	// start, for rstwatch_kernel_resets_untraced.
	traced  func() (map[uint32]uint64, error)
	maxAge  time.Duration
	netnsOK labelCap

	mu      sync.Mutex
	start   map[uint32]reconcile.Counters // first reading of each namespace
	last    map[uint32]reconcile.Counters
	totals  map[string]reconcile.Counters // by netns label: growth since start
	kernel0 map[uint32]uint64             // OutRsts growth per namespace, for untraced
	readAt  time.Time
}

// DefaultNetNS bounds the netns label of the kernel counters.
const DefaultNetNS = 64

// NewKernelCounters reads k; traced may be nil (then the untraced gauge is
// not exported). Call Start once the programs are attached.
func NewKernelCounters(k *reconcile.Kernel, traced func() (map[uint32]uint64, error)) *KernelCounters {
	return &KernelCounters{
		kernel: k, traced: traced, maxAge: 30 * time.Second, netnsOK: newLabelCap(DefaultNetNS),
		start: map[uint32]reconcile.Counters{}, last: map[uint32]reconcile.Counters{},
		totals: map[string]reconcile.Counters{}, kernel0: map[uint32]uint64{},
	}
}

// SetTraced gives the resets traced as sent per namespace since start
// (Collector.SentByNetNS), which turns on rstwatch_kernel_resets_untraced.
func (k *KernelCounters) SetTraced(traced func() (map[uint32]uint64, error)) {
	k.mu.Lock()
	k.traced = traced
	k.mu.Unlock()
}

// Start takes the first reading: growth is counted from here.
func (k *KernelCounters) Start() {
	all := k.kernel.ReadAll(0)
	k.mu.Lock()
	defer k.mu.Unlock()
	for ns, c := range all {
		k.start[ns], k.last[ns] = c, c
	}
	k.readAt = time.Now()
}

// read adds each namespace's growth since the last reading. At most once a
// second, however often Prometheus scrapes.
func (k *KernelCounters) read() {
	if time.Since(k.readAt) < time.Second {
		return
	}
	k.readAt = time.Now()
	for ns, c := range k.kernel.ReadAll(k.maxAge) {
		prev, seen := k.last[ns]
		if !seen {
			// Not there at the start: counted since it was made.
			k.start[ns] = reconcile.Counters{}
		}
		k.last[ns] = c
		label, _ := k.netnsOK.fold(strconv.FormatUint(uint64(ns), 10))
		d := c.Sub(prev)
		k.totals[label] = k.totals[label].Add(d)
		k.kernel0[ns] += d.OutRsts
	}
}

var (
	descKernelOutRsts = prometheus.NewDesc("rstwatch_kernel_tcp_out_rsts_total",
		"Resets the TCP stack of each network namespace sent, by its own counter (Tcp: OutRsts in /proc/net/snmp), since serve started (or since the namespace was made). Compare with rstwatch_resets_total{direction=\"send\"}: a firewall's or forged reset is in neither.",
		[]string{"netns"}, nil)
	descKernelAborts = prometheus.NewDesc("rstwatch_kernel_tcp_aborts_total",
		"Connections the TCP stack of each network namespace aborted, by its own counters (TcpExt: TCPAbortOnData/OnClose/OnMemory/OnTimeout/OnLinger), since serve started; a timeout abort sends no reset.",
		[]string{"netns", "kind"}, nil)
	descKernelUntraced = prometheus.NewDesc("rstwatch_kernel_resets_untraced",
		"Resets the kernel counted as sent in a namespace since serve started, minus those rstwatch traced there: resets not seen (lost, skipped by the kernel, filtered). Negative when rstwatch traced more than the kernel counted.",
		[]string{"netns"}, nil)
)

func (k *KernelCounters) Describe(chan<- *prometheus.Desc) {}

func (k *KernelCounters) Collect(ch chan<- prometheus.Metric) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.read()
	for label, c := range k.totals {
		ch <- prometheus.MustNewConstMetric(descKernelOutRsts, prometheus.CounterValue, float64(c.OutRsts), label)
		for _, a := range c.Aborts() {
			ch <- prometheus.MustNewConstMetric(descKernelAborts, prometheus.CounterValue, float64(a.Value), label, a.Name)
		}
	}
	if k.traced == nil {
		return
	}
	traced, err := k.traced()
	if err != nil {
		return
	}
	for ns, n := range k.kernel0 {
		label, folded := k.netnsOK.fold(strconv.FormatUint(uint64(ns), 10))
		if folded {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descKernelUntraced, prometheus.GaugeValue, float64(n)-float64(traced[ns]), label)
	}
}
