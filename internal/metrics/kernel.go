package metrics

import (
	"bytes"
	"os"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descLost = prometheus.NewDesc("rstwatch_lost_events_total",
		"Per-event records the kernel dropped because the ring buffer was full (only with --events-file; the counters themselves lose nothing).", nil, nil)
	descSeen = prometheus.NewDesc("rstwatch_kernel_resets_seen_total",
		"Resets the BPF programs saw, before the pid/port/netns filters.", nil, nil)
	descFiltered = prometheus.NewDesc("rstwatch_kernel_resets_filtered_total",
		"Resets dropped in the kernel by the pid/port/netns filters.", nil, nil)
	descAggFull = prometheus.NewDesc("rstwatch_kernel_aggregate_full_total",
		"Resets counted in the kernel's overflow row because its aggregate map was full; they appear in rstwatch_resets_total with direction \"unknown\".", nil, nil)
	descOwnerFull = prometheus.NewDesc("rstwatch_owner_table_full_total",
		"Sockets whose owner the kernel could not remember because their bucket of the owner table was full; their resets count as owner unknown unless the iterator over open files names the owner.", nil, nil)
	descProgRuns = prometheus.NewDesc("rstwatch_bpf_program_runs_total",
		"Times the kernel ran each rstwatch BPF program; 0 unless BPF statistics are enabled (see rstwatch_bpf_stats_enabled).", []string{"program"}, nil)
	descProgTime = prometheus.NewDesc("rstwatch_bpf_program_run_seconds_total",
		"Time the kernel spent in each rstwatch BPF program; 0 unless BPF statistics are enabled.", []string{"program"}, nil)
	descProgMissed = prometheus.NewDesc("rstwatch_bpf_program_missed_total",
		"Runs of each rstwatch BPF program the kernel skipped because another BPF program was running on that CPU: resets or socket changes not seen. Counted whether or not statistics are enabled.", []string{"program"}, nil)
	descStatsOn = prometheus.NewDesc("rstwatch_bpf_stats_enabled",
		"1 when the kernel accounts BPF program run time (kernel.bpf_stats_enabled=1 or serve --bpf-stats), else 0.", nil, nil)
)

func (c *Collector) collectKernel(ch chan<- prometheus.Metric) {
	st := c.stats
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descLost, st.Lost}, {descSeen, st.Seen}, {descFiltered, st.Filtered}, {descAggFull, st.AggFull}, {descOwnerFull, st.OwnerFull}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
	for _, p := range c.progs {
		ch <- prometheus.MustNewConstMetric(descProgRuns, prometheus.CounterValue, float64(p.RunCount), p.Name)
		ch <- prometheus.MustNewConstMetric(descProgTime, prometheus.CounterValue, p.Runtime.Seconds(), p.Name)
		ch <- prometheus.MustNewConstMetric(descProgMissed, prometheus.CounterValue, float64(p.RecursionMisses), p.Name)
	}
	on := 0.0
	if (c.o.StatsEnabled != nil && c.o.StatsEnabled()) || sysctlStatsEnabled() {
		on = 1
	}
	ch <- prometheus.MustNewConstMetric(descStatsOn, prometheus.GaugeValue, on)
}

// sysctlStatsEnabled reads kernel.bpf_stats_enabled. It does not see stats
// enabled through a BPF_ENABLE_STATS descriptor, hence Options.StatsEnabled.
func sysctlStatsEnabled() bool {
	b, err := os.ReadFile("/proc/sys/kernel/bpf_stats_enabled")
	return err == nil && string(bytes.TrimSpace(b)) == "1"
}
