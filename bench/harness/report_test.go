package harness

import (
	"strings"
	"testing"

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
	for round, traceRatio := range []float64{0.90, 0.80, 0.86} {
		runs = append(runs,
			Run{Round: round + 1, Shape: storm.Refused, Config: cfgTrace, Ratio: ptr(traceRatio),
				Storm: storm.Result{Resets: 100}, Unit: "events", Expected: 200, Received: ptr(uint64(200)),
				Lost: ptr(uint64(round)), CPUPerEventUs: ptr(0.4), BPFNsPerEvent: ptr(300.0), PeakRSS: ptr(uint64(40 << 20))},
			Run{Round: round + 1, Shape: storm.Refused, Config: cfgFloorEmpty, Ratio: ptr(0.99), BPFNsPerEvent: ptr(100.0)},
			Run{Round: round + 1, Shape: storm.Refused, Config: Baseline, Ratio: ptr(1.0)},
			Run{Round: round + 1, Shape: storm.Linger, Config: Baseline, Ratio: ptr(1.0)},
		)
	}
	rep := synthetic(runs, Skip{Name: cfgServe, Why: "serve not available"})

	for _, c := range []struct {
		name, config, want string
	}{
		{"JSON stream ≥", cfgTrace, "pass"}, // median 0.86
		{"JSON stream loses", cfgTrace, "FAIL"},
		{"JSON stream tracer CPU", cfgTrace, "pass"},
		{"BPF ≤", cfgTrace, "FAIL"},
		{"peak RSS", cfgTrace, "pass"},
		{"serve within", cfgServe, "skipped: serve not available"},
	} {
		if got := target(t, rep, c.name, c.config, storm.Refused).Result; got != c.want {
			t.Errorf("%s %s: %q, want %q", c.name, c.config, got, c.want)
		}
	}
	if got := target(t, rep, "BPF ≤", cfgTrace, storm.Refused).Got; !strings.Contains(got, "net of floor-empty: 200 ns") {
		t.Errorf("BPF target got %q, want the net figure 200 ns", got)
	}
	if got := target(t, rep, "JSON stream ≥", cfgTrace, storm.Linger).Result; !strings.HasPrefix(got, "skipped") {
		t.Errorf("linger without runs: %q, want skipped", got)
	}
}

func TestServeAgainstFloorByRound(t *testing.T) {
	var runs []Run
	// Round 2 is slow for everyone: compared round by round it is no worse.
	for round, speed := range []float64{1, 0.5, 1} {
		runs = append(runs,
			Run{Round: round + 1, Shape: storm.Linger, Config: cfgServe, Ratio: ptr(0.975 * speed)},
			Run{Round: round + 1, Shape: storm.Linger, Config: cfgFloorEmpty, Ratio: ptr(0.99 * speed)},
			Run{Round: round + 1, Shape: storm.Linger, Config: Baseline, Ratio: ptr(1.0)},
		)
	}
	if got := target(t, synthetic(runs), "serve within", cfgServe, storm.Linger).Result; got != "pass" {
		t.Errorf("serve at 0.985 of the floor: %q, want pass", got)
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
