package harness

import (
	"fmt"
	"strings"
	"time"

	"github.com/rstwatch/rstwatch/bench/churn"
	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// Run is one storm under one configuration. Pointers are measurements that
// do not apply to every configuration (JSON null).
type Run struct {
	Round  int          `json:"round"`
	Shape  storm.Shape  `json:"shape"`
	Config string       `json:"config"`
	Storm  storm.Result `json:"storm"`
	// Churn is the connection churn's main wrk run (Shape churn), with BPF
	// statistics off; ChurnStats the short one with them on.
	Churn      *churn.Result `json:"churn,omitempty"`
	ChurnStats *churn.Result `json:"churn_stats,omitempty"`
	// Rate is resets per second for a storm, requests (connections) per
	// second for the churn.
	Rate float64 `json:"resets_per_s"`
	// Ratio is Rate over the same round's baseline rate for this shape.
	Ratio *float64 `json:"ratio,omitempty"`
	// Expected and Received are in Unit: tracepoint events (two per reset)
	// or captured packets (one per reset).
	Unit     string  `json:"unit,omitempty"`
	Expected uint64  `json:"expected,omitempty"`
	Received *uint64 `json:"received,omitempty"`
	// Lost is what the tracer itself reports dropping.
	Lost          *uint64            `json:"lost,omitempty"`
	TracerCPU     *time.Duration     `json:"tracer_cpu_ns,omitempty"`
	CPUPerEventUs *float64           `json:"tracer_cpu_us_per_event,omitempty"`
	PeakRSS       *uint64            `json:"peak_rss_bytes,omitempty"`
	BPF           []measure.ProgStat `json:"bpf_programs,omitempty"`
	BPFNsPerEvent *float64           `json:"bpf_ns_per_event,omitempty"`
	// KernelOutRsts is the growth of the kernel's TcpOutRsts over the storm:
	// the storm's resets plus anything else on the host.
	KernelOutRsts uint64 `json:"kernel_out_rsts"`
	Note          string `json:"note,omitempty"`
	Error         string `json:"error,omitempty"`

	notReady bool
}

func (r *Run) kernelRsts(before uint64) {
	if after, err := measure.TCPOutRsts(); err == nil && before > 0 {
		r.KernelOutRsts = after - before
	}
}

// fill records what the tracer reported and its programs' statistics.
// Costs are per tracepoint event (two per reset) for every tracer, so
// packet capture and BPF tracers compare on one scale; for the churn they
// are per connection. bpfUnits is what the programs' statistics cover,
// cpuUnits what the tracer's CPU time covers.
func (r *Run) fill(tl tally, progs []measure.ProgStat, bpfUnits, cpuUnits uint64) {
	r.Unit, r.Lost, r.BPF = tl.Unit, tl.Lost, progs
	if tl.Note != "" {
		r.Note = strings.TrimPrefix(r.Note+"; "+tl.Note, "; ")
	}
	if r.Shape == storm.Churn {
		// No resets to receive: only the tracer's own drops count.
		if tl.HaveCPU && cpuUnits > 0 {
			cpu := tl.CPU
			us := cpu.Seconds() * 1e6 / float64(cpuUnits)
			r.TracerCPU, r.CPUPerEventUs = &cpu, &us
		}
		if tl.PeakRSS > 0 {
			rss := tl.PeakRSS
			r.PeakRSS = &rss
		}
		if len(progs) > 0 && bpfUnits > 0 {
			ns := float64(measure.TotalRuntime(progs).Nanoseconds()) / float64(bpfUnits)
			r.BPFNsPerEvent = &ns
		}
		return
	}
	events := cpuUnits
	r.Expected = r.Storm.Resets * tl.PerReset
	received := tl.Received
	if tl.FromRunCount {
		received = 0
		for _, p := range progs {
			received += p.RunCount
		}
	}
	r.Received = &received
	if tl.HaveCPU {
		cpu := tl.CPU
		r.TracerCPU = &cpu
		if events > 0 {
			us := cpu.Seconds() * 1e6 / float64(events)
			r.CPUPerEventUs = &us
		}
	}
	if tl.PeakRSS > 0 {
		rss := tl.PeakRSS
		r.PeakRSS = &rss
	}
	if len(progs) > 0 && bpfUnits > 0 {
		ns := float64(measure.TotalRuntime(progs).Nanoseconds()) / float64(bpfUnits)
		r.BPFNsPerEvent = &ns
	}
}

// units is what the run's costs are divided by: tracepoint events of a
// storm, connections of the churn.
func (r *Run) units() uint64 {
	if r.Shape == storm.Churn {
		if r.ChurnStats != nil {
			return r.ChurnStats.Requests
		}
		return 0
	}
	return r.Storm.Events()
}

// rateUnit names what a workload's rate counts.
func rateUnit(sh storm.Shape) string {
	if sh == storm.Churn {
		return "connections"
	}
	return "resets"
}

// progress is the one line logged as each run ends.
func (r *Run) progress() string {
	var b strings.Builder
	fmt.Fprintf(&b, "round %d %-8s %-20s %8.0f %s/s", r.Round, r.Shape, r.Config, r.Rate, rateUnit(r.Shape))
	if r.Ratio != nil {
		fmt.Fprintf(&b, "  ×%.3f", *r.Ratio)
	}
	if r.Received != nil {
		fmt.Fprintf(&b, "  got %d/%d %s", *r.Received, r.Expected, r.Unit)
	}
	if r.Lost != nil {
		fmt.Fprintf(&b, " lost %d", *r.Lost)
	}
	if r.CPUPerEventUs != nil {
		fmt.Fprintf(&b, "  cpu %.3f µs/ev", *r.CPUPerEventUs)
	}
	if r.BPFNsPerEvent != nil {
		per := "ev"
		if r.Shape == storm.Churn {
			per = "conn"
		}
		fmt.Fprintf(&b, "  bpf %.0f ns/%s", *r.BPFNsPerEvent, per)
	}
	if e := r.Storm.ErrorSummary(); e != "" {
		fmt.Fprintf(&b, "  storm errors: %s", e)
	}
	if r.Note != "" {
		fmt.Fprintf(&b, "  (%s)", r.Note)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "  ERROR: %s", r.Error)
	}
	return b.String()
}
