package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

func ptr[T any](v T) *T { return &v }

// synthetic builds a report from runs without running anything.
func synthetic(runs []Run, skipped ...Skip) *Report {
	rep := &Report{Runs: runs, Skipped: skipped}
	for _, t := range Tracers("/nonexistent/rstwatch") {
		rep.Tracers = append(rep.Tracers, TracerInfo{Name: t.Name})
	}
	rep.finish()
	return rep
}

func target(t *testing.T, rep *Report, name, config string, shape storm.Shape) Target {
	t.Helper()
	for _, tg := range rep.Targets {
		if strings.HasPrefix(tg.Target, name) && tg.Config == config && tg.Shape == shape {
			return tg
		}
	}
	t.Fatalf("no target %q for %s %s", name, config, shape)
	return Target{}
}

func TestTargets(t *testing.T) {
	var runs []Run
	prog := func(name string, ns float64) measure.ProgStat {
		return measure.ProgStat{Name: name, RunCount: 200, Runtime: time.Duration(ns * 200)}
	}
	for round, traceRatio := range []float64{0.90, 0.80, 0.86} {
		runs = append(runs,
			Run{Round: round + 1, Shape: storm.Refused, Config: cfgTrace, Ratio: ptr(traceRatio),
				Storm: storm.Result{Resets: 100}, Unit: "events", Expected: 200, Received: ptr(uint64(200)),
				Lost: ptr(uint64(round)), CPUPerEventUs: ptr(0.4), BPFNsPerEvent: ptr(300.0), PeakRSS: ptr(uint64(40 << 20)),
				BPF: []measure.ProgStat{prog("rstwatch_send_r", 250), prog("rstwatch_receiv", 310)}},
			Run{Round: round + 1, Shape: storm.Refused, Config: cfgFloorEmpty, Ratio: ptr(0.99), BPFNsPerEvent: ptr(100.0)},
			Run{Round: round + 1, Shape: storm.Refused, Config: Baseline, Ratio: ptr(1.0)},
			Run{Round: round + 1, Shape: storm.Linger, Config: Baseline, Ratio: ptr(1.0)},
		)
	}
	rep := synthetic(runs, Skip{Name: cfgServe, Why: "serve not available"}, Skip{Name: "churn", Why: "nginx not installed"})

	for _, c := range []struct {
		name, config string
		shape        storm.Shape
		want         string
	}{
		{"JSON stream ≥", cfgTrace, storm.Refused, "pass"}, // median 0.86
		{"JSON stream loses", cfgTrace, storm.Refused, "FAIL"},
		{"JSON stream tracer CPU", cfgTrace, storm.Refused, "pass"},
		{"BPF send program", cfgTrace, storm.Refused, "pass"},
		{"BPF receive program", cfgTrace, storm.Refused, "FAIL"},
		{"peak RSS", cfgTrace, storm.Refused, "pass"},
		{"serve ≥", cfgServe, storm.Refused, "skipped: serve not available"},
		{"churn ≥", cfgTrace, storm.Churn, "skipped: nginx not installed"},
		{"JSON stream loses", cfgTrace, storm.Linger, "skipped: no successful run"},
	} {
		if got := target(t, rep, c.name, c.config, c.shape).Result; got != c.want {
			t.Errorf("%s %s %s: %q, want %q", c.name, c.config, c.shape, got, c.want)
		}
	}
	if got := target(t, rep, "BPF receive program", cfgTrace, storm.Refused).Got; got != "310 ns (rstwatch_receiv)" {
		t.Errorf("receive program: %q", got)
	}
}

// The churn is judged against the bare churn; its table compares each
// configuration with the floors round by round and gives BPF time per
// connection net of the typed floor.
func TestChurnReport(t *testing.T) {
	var runs []Run
	// Round 2 is slow for everyone: compared round by round it is no worse.
	for round, speed := range []float64{1, 0.5, 1} {
		r := round + 1
		runs = append(runs,
			Run{Round: r, Shape: storm.Churn, Config: Baseline, Ratio: ptr(1.0), Rate: 20000},
			Run{Round: r, Shape: storm.Churn, Config: cfgServe, Ratio: ptr(0.975 * speed), BPFNsPerEvent: ptr(1500.0), Lost: ptr(uint64(0))},
			Run{Round: r, Shape: storm.Churn, Config: cfgTrace, Ratio: ptr(0.96 * speed), BPFNsPerEvent: ptr(1600.0)},
			Run{Round: r, Shape: storm.Churn, Config: cfgFloorHooksTyped, Ratio: ptr(0.99 * speed), BPFNsPerEvent: ptr(400.0)},
			Run{Round: r, Shape: storm.Churn, Config: cfgFloorHooksClassic, Ratio: ptr(0.95 * speed), BPFNsPerEvent: ptr(600.0)},
		)
	}
	rep := synthetic(runs)
	if got := target(t, rep, "churn ≥", cfgServe, storm.Churn); got.Result != "pass" || got.Got != "0.975×" {
		t.Errorf("serve: %+v, want pass at the median 0.975", got)
	}
	if got := target(t, rep, "churn ≥", cfgTrace, storm.Churn).Result; got != "FAIL" {
		t.Errorf("trace at 0.96: %q, want FAIL", got)
	}
	var b strings.Builder
	rep.Markdown(&b)
	want := "| rstwatch-serve | 0 | 0.975 | 0.985 | 1.026 | 1500 | 1100 | n/a | 0 | 3 |"
	if !strings.Contains(b.String(), want) {
		t.Errorf("churn table lacks %q:\n%s", want, b.String())
	}
}

func TestSetRatiosAgainstBothBaselines(t *testing.T) {
	runs := []Run{
		{Round: 1, Shape: storm.Refused, Config: Baseline, Rate: 100},
		{Round: 1, Shape: storm.Refused, Config: cfgTrace, Rate: 84},
		{Round: 1, Shape: storm.Refused, Config: cfgServe, Rate: 50, Error: "failed"},
		{Round: 1, Shape: storm.Refused, Config: Baseline, Rate: 110},
	}
	line := setRatios(runs)
	if runs[1].Ratio == nil || *runs[1].Ratio != 0.8 {
		t.Errorf("ratio = %v, want 0.8 (84 over the mean of 100 and 110)", runs[1].Ratio)
	}
	if runs[2].Ratio != nil {
		t.Errorf("failed run got a ratio %v", *runs[2].Ratio)
	}
	if !strings.Contains(line, "drift 9.5%") {
		t.Errorf("summary %q, want drift 9.5%%", line)
	}
}
