package harness

import (
	"fmt"

	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// The targets (#5).
const (
	cfgTrace      = "rstwatch-trace-json"
	cfgServe      = "rstwatch-serve"
	cfgFloorEmpty = "floor-empty"

	minTraceRatio   = 0.85
	maxCPUPerEvent  = 0.5   // µs of tracer CPU per event
	serveVsFloor    = 0.98  // serve's rate at least 98% of the empty floor's
	maxBPFNsPerEvnt = 250.0 // ns of BPF run time per event
	maxPeakRSS      = 50 << 20
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

func (rep *Report) skippedWhy(config string) string {
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
			t.Result = rep.skippedWhy(config)
		} else if got, ok := check(row); got == "" {
			t.Result = "skipped: not measured"
		} else {
			t.Got, t.Result = got, verdict(ok)
		}
		out = append(out, t)
	}
	for _, sh := range storm.Shapes {
		if len(rep.runsOf(Baseline, sh)) == 0 {
			continue // shape not run (-shapes)
		}
		add(fmt.Sprintf("JSON stream ≥ %.2f× baseline", minTraceRatio), cfgTrace, sh, func(r Row) (string, bool) {
			if r.Ratio == nil {
				return "", false
			}
			return fmt.Sprintf("%.3f×", *r.Ratio), *r.Ratio >= minTraceRatio
		})
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
		out = append(out, rep.serveTarget(sh))
		for _, cfg := range []string{cfgTrace, cfgServe} {
			add(fmt.Sprintf("BPF ≤ %.0f ns/event", maxBPFNsPerEvnt), cfg, sh, func(r Row) (string, bool) {
				if r.BPFNsPerEvent == nil {
					return "", false
				}
				got := fmt.Sprintf("%.0f ns", *r.BPFNsPerEvent)
				if r.BPFNetNsPerEvent != nil {
					got += fmt.Sprintf(" (net of floor-empty: %.0f ns)", *r.BPFNetNsPerEvent)
				}
				// Judged on the gross figure: the statistics overhead is
				// known from floor-empty, but not what part of it the
				// kernel pays without statistics.
				return got, *r.BPFNsPerEvent <= maxBPFNsPerEvnt
			})
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

// serveTarget compares serve with the empty floor round by round, so that
// drift between rounds cancels out.
func (rep *Report) serveTarget(sh storm.Shape) Target {
	t := Target{Target: fmt.Sprintf("serve within %.0f%% of the empty floor", (1-serveVsFloor)*100), Config: cfgServe, Shape: sh}
	var q []float64
	for _, s := range rep.runsOf(cfgServe, sh) {
		for _, f := range rep.runsOf(cfgFloorEmpty, sh) {
			if s.Round == f.Round && s.Ratio != nil && f.Ratio != nil && *f.Ratio > 0 {
				q = append(q, *s.Ratio / *f.Ratio)
			}
		}
	}
	m := measure.Median(q)
	if len(q) == 0 {
		t.Result = rep.skippedWhy(cfgServe)
		if row, ok := rep.row(cfgServe, sh); ok && row.Runs > 0 {
			t.Result = "skipped: no floor-empty run in the same round"
		}
		return t
	}
	t.Got = fmt.Sprintf("%.3f of floor-empty's rate", m)
	t.Result = verdict(m >= serveVsFloor)
	return t
}
