package harness

import (
	"fmt"
	"strings"
	"time"

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
	Rate   float64      `json:"resets_per_s"`
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
// packet capture and BPF tracers compare on one scale.
func (r *Run) fill(tl tally, progs []measure.ProgStat) {
	events := r.Storm.Events()
	r.Unit, r.Note, r.Lost, r.BPF = tl.Unit, tl.Note, tl.Lost, progs
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
	if len(progs) > 0 && events > 0 {
		ns := float64(measure.TotalRuntime(progs).Nanoseconds()) / float64(events)
		r.BPFNsPerEvent = &ns
	}
}

// progress is the one line logged as each run ends.
func (r *Run) progress() string {
	var b strings.Builder
	fmt.Fprintf(&b, "round %d %-8s %-20s %8.0f resets/s", r.Round, r.Shape, r.Config, r.Rate)
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
		fmt.Fprintf(&b, "  bpf %.0f ns/ev", *r.BPFNsPerEvent)
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
