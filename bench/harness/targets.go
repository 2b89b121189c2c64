package harness

import (
	"fmt"
	"strings"

	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// The issues' goals: #12 (always on at the cost floor) and, kept from #5,
// the JSON stream's own CPU and memory.
const (
	cfgTrace             = "rstwatch-trace-json"
	cfgServe             = "rstwatch-serve"
	cfgFloorEmpty        = "floor-empty"
	cfgFloorHooksClassic = "floor-hooks-classic"
	cfgFloorHooksTyped   = "floor-hooks-typed"
	cfgFloorRing         = "floor-ring"

	minChurnRatio      = 0.97  // serve and trace on connection churn without resets
	minServeStormRatio = 0.95  // serve, refused storm
	minTraceRatio      = 0.85  // trace JSON, refused storm
	maxResetProgNs     = 300.0 // ns per run of the send and receive programs, refused storm
	maxCPUPerEvent     = 0.5   // µs of tracer CPU per event
	maxPeakRSS         = 50 << 20
)

// Target is one of the targets checked against this bench.
type Target struct {
	Target string      `json:"target"`
	Config string      `json:"config"`
	Shape  storm.Shape `json:"shape,omitempty"`
	Got    string      `json:"got"`
	// Result is pass, FAIL, or "skipped: why".
	Result string `json:"result"`
}

func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}

func (rep *Report) skippedWhy(config string, shape storm.Shape) string {
	for _, s := range rep.Skipped {
		if s.Name == string(shape) {
			return "skipped: " + s.Why
		}
	}
	selected := false
	for _, t := range rep.Tracers {
		selected = selected || t.Name == config
	}
	if !selected {
		return "skipped: not selected (-only)"
	}
	for _, s := range rep.Skipped {
		if s.Name == config {
			return "skipped: " + s.Why
		}
	}
	return "skipped: no successful run"
}

func (rep *Report) targets() []Target {
	var out []Target
	add := func(target, config string, shape storm.Shape, check func(Row) (string, bool)) {
		t := Target{Target: target, Config: config, Shape: shape}
		row, ok := rep.row(config, shape)
		if !ok || row.Runs == 0 {
			t.Result = rep.skippedWhy(config, shape)
		} else if got, ok := check(row); got == "" {
			t.Result = "skipped: not measured"
		} else {
			t.Got, t.Result = got, verdict(ok)
		}
		out = append(out, t)
	}
	ratio := func(min float64) func(Row) (string, bool) {
		return func(r Row) (string, bool) {
			if r.Ratio == nil {
				return "", false
			}
			return fmt.Sprintf("%.3f×", *r.Ratio), *r.Ratio >= min
		}
	}
	ran := func(sh storm.Shape) bool {
		for _, s := range rep.Skipped {
			if s.Name == string(sh) {
				return true // say why it did not
			}
		}
		return len(rep.runsOf(Baseline, sh)) > 0
	}

	if ran(storm.Churn) {
		for _, cfg := range []string{cfgServe, cfgTrace} {
			add(fmt.Sprintf("churn ≥ %.2f× bare", minChurnRatio), cfg, storm.Churn, ratio(minChurnRatio))
		}
	}
	if ran(storm.Refused) {
		add(fmt.Sprintf("serve ≥ %.2f× bare", minServeStormRatio), cfgServe, storm.Refused, ratio(minServeStormRatio))
		add(fmt.Sprintf("JSON stream ≥ %.2f× bare", minTraceRatio), cfgTrace, storm.Refused, ratio(minTraceRatio))
		for _, cfg := range []string{cfgServe, cfgTrace} {
			for _, prog := range []string{"send", "receive"} {
				add(fmt.Sprintf("BPF %s program ≤ %.0f ns per reset event", prog, maxResetProgNs), cfg, storm.Refused,
					rep.progCheck(cfg, storm.Refused, prog))
			}
		}
	}
	for _, sh := range []storm.Shape{storm.Refused, storm.Linger} {
		if len(rep.runsOf(Baseline, sh)) == 0 {
			continue
		}
		add("JSON stream loses no event", cfgTrace, sh, func(r Row) (string, bool) {
			if r.LostMax == nil || r.ReceivedMin == nil {
				return "", false
			}
			return fmt.Sprintf("lost ≤ %d, output ≥ %.4f of generated", *r.LostMax, *r.ReceivedMin),
				*r.LostMax == 0 && *r.ReceivedMin >= 1
		})
		add(fmt.Sprintf("JSON stream tracer CPU ≤ %.1f µs/event", maxCPUPerEvent), cfgTrace, sh, func(r Row) (string, bool) {
			if r.CPUPerEventUs == nil {
				return "", false
			}
			return fmt.Sprintf("%.3f µs", *r.CPUPerEventUs), *r.CPUPerEventUs <= maxCPUPerEvent
		})
		for _, cfg := range []string{cfgTrace, cfgServe} {
			add(fmt.Sprintf("peak RSS ≤ %d MB", maxPeakRSS>>20), cfg, sh, func(r Row) (string, bool) {
				if r.PeakRSSMax == nil {
					return "", false
				}
				return fmt.Sprintf("%.1f MB", float64(*r.PeakRSSMax)/(1<<20)), *r.PeakRSSMax <= maxPeakRSS
			})
		}
	}
	return out
}

// progCheck judges one reset program's median run time. Kernel program
// names are cut to 15 characters: rstwatch_send_r(eset[_btf]),
// rstwatch_receiv(e_reset[_btf]).
func (rep *Report) progCheck(config string, shape storm.Shape, which string) func(Row) (string, bool) {
	prefix := map[string]string{"send": "rstwatch_send_r", "receive": "rstwatch_receiv"}[which]
	return func(Row) (string, bool) {
		for _, p := range rep.programRows() {
			if p.config == config && p.shape == shape && strings.HasPrefix(p.name, prefix) {
				return fmt.Sprintf("%.0f ns (%s)", p.nsPerRun, p.name), p.nsPerRun <= maxResetProgNs
			}
		}
		return "", false
	}
}

// floorRatio is a configuration's rate over a floor's, round by round, so
// that drift between rounds cancels out; NaN without common rounds.
func (rep *Report) floorRatio(config, floor string, sh storm.Shape) float64 {
	var q []float64
	for _, s := range rep.runsOf(config, sh) {
		for _, f := range rep.runsOf(floor, sh) {
			if s.Round == f.Round && s.Ratio != nil && f.Ratio != nil && *f.Ratio > 0 {
				q = append(q, *s.Ratio / *f.Ratio)
			}
		}
	}
	return measure.Median(q)
}
