package harness

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rstwatch/rstwatch/bench/churn"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// Markdown writes the report for people: environment, medians, targets.
func (rep *Report) Markdown(w io.Writer) {
	e, o := rep.Env, rep.Options
	fmt.Fprintf(w, "## rstwatch-bench %s\n\n", e.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "- kernel %s, %d CPUs, load average %s at start, %s at end\n", e.Kernel, e.CPUs, e.LoadStart, e.LoadEnd)
	fmt.Fprintf(w, "- %d round(s) × %v per run, %d storm workers, configurations alternated; medians over rounds\n", o.Rounds, o.Duration, o.Workers)
	fmt.Fprintf(w, "- rstwatch %s; %s\n", o.Rstwatch, toolList(e.Tools))
	fmt.Fprintf(w, "- %s\n", e.BPFStatsEnable)
	fmt.Fprintf(w, "- %s\n", toolVersions(e.Tools, "nginx", "wrk"))
	fmt.Fprintf(w, "- rate × baseline: the workload's rate over the mean of the same round's two bare runs. In the storms, CPU and BPF costs are per tracepoint event (2 per reset: one sent, one received) for every tracer; tcpdump receives packets (1 per reset); in the churn they are per connection. In-process floors: their cost is in the kernel, in the workload's context, so tracer CPU and RSS are n/a. BPF ns/event: the tracer's programs' run time (all of them, not only the reset ones) over the storm's events; \"net\" subtracts the floor's (floor-empty in storms, floor-hooks-typed in the churn), i.e. the statistics' own clock reads.\n")
	fmt.Fprintf(w, "- bare storm run first and last in each round and shape; ratios are against their mean; their drift apart: %s\n", rep.driftSummary())
	for _, s := range rep.Skipped {
		fmt.Fprintf(w, "- skipped: %s: %s\n", s.Name, s.Why)
	}
	fmt.Fprintln(w)
	header := false
	for _, r := range rep.Summary {
		if r.Shape == storm.Churn {
			continue
		}
		if !header {
			fmt.Fprintln(w, "| configuration | storm | rate × baseline | × floor-hooks-typed | × floor-ring | resets/s | tracer CPU µs/event | received / generated | lost (tracer's count, max) | peak RSS MB | BPF ns/event | BPF ns/event net of floor-empty | runs |")
			fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
			header = true
		}
		recv := "n/a"
		if r.ReceivedFrac != nil {
			recv = fmt.Sprintf("%.4f %s", *r.ReceivedFrac, r.Unit)
		}
		typed, ring := "n/a", "n/a"
		if r.Config != Baseline && r.Config != cfgFloorHooksTyped {
			typed = f(opt(rep.floorRatio(r.Config, cfgFloorHooksTyped, r.Shape)), "%.3f")
		}
		if r.Config != Baseline && r.Config != cfgFloorRing {
			ring = f(opt(rep.floorRatio(r.Config, cfgFloorRing, r.Shape)), "%.3f")
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Config, r.Shape, f(r.Ratio, "%.3f"), typed, ring, f(r.Rate, "%.0f"), f(r.CPUPerEventUs, "%.3f"), recv,
			u(r.LostMax, 1, "%.0f"), u(r.PeakRSSMax, 1<<20, "%.1f"), f(r.BPFNsPerEvent, "%.0f"), f(r.BPFNetNsPerEvent, "%.0f"), runsText(r))
	}
	rep.churnMarkdown(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | configuration | storm | got | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, t := range rep.Targets {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", t.Target, t.Config, t.Shape, orNA(t.Got), t.Result)
	}
	rep.programsMarkdown(w)
	var errs []string
	for _, r := range rep.Runs {
		if r.Error != "" {
			errs = append(errs, fmt.Sprintf("- round %d %s %s: %s", r.Round, r.Shape, r.Config, r.Error))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(w, "\nFailed runs:\n%s\n", strings.Join(errs, "\n"))
	}
}

// churnMarkdown is the connection churn's table: requests per second with
// BPF statistics off, against the bare churn and against the floors of
// empty programs on the same hooks; BPF run time per connection from the
// window with statistics on.
func (rep *Report) churnMarkdown(w io.Writer) {
	var rows []Row
	for _, r := range rep.Summary {
		if r.Shape == storm.Churn {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\nConnection churn without resets (nginx answering 204, wrk -t1 -c%d with Connection: close; one connection per request). Rates with BPF statistics off; BPF ns per connection from a further %v with them on.\n\n", churn.Connections, churnStatsWindow)
	fmt.Fprintln(w, "| configuration | connections/s | × bare | × floor-hooks-typed | × floor-hooks-classic | BPF ns/connection | net of floor-hooks-typed | tracer CPU µs/connection | lost | runs |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		typed := opt(rep.floorRatio(r.Config, cfgFloorHooksTyped, storm.Churn))
		classic := opt(rep.floorRatio(r.Config, cfgFloorHooksClassic, storm.Churn))
		if r.Config == Baseline || r.Config == cfgFloorHooksTyped {
			typed = nil
		}
		if r.Config == Baseline || r.Config == cfgFloorHooksClassic {
			classic = nil
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Config, f(r.Rate, "%.0f"), f(r.Ratio, "%.3f"), f(typed, "%.3f"), f(classic, "%.3f"),
			f(r.BPFNsPerEvent, "%.0f"), f(r.BPFNetNsPerEvent, "%.0f"), f(r.CPUPerEventUs, "%.2f"), u(r.LostMax, 1, "%.0f"), runsText(r))
	}
}

func runsText(r Row) string {
	runs := fmt.Sprint(r.Runs)
	if r.Errors > 0 {
		runs += fmt.Sprintf(" (%d failed)", r.Errors)
	}
	return runs
}

func f(p *float64, format string) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *p)
}

func u(p *uint64, div float64, format string) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, float64(*p)/div)
}

func orNA(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

func toolList(tools map[string]string) string {
	return toolVersions(tools, "bpftrace", "tcpdump")
}

func toolVersions(tools map[string]string, names ...string) string {
	var parts []string
	for _, k := range names {
		if v, ok := tools[k]; ok {
			parts = append(parts, v)
		} else {
			parts = append(parts, k+" not installed")
		}
	}
	return strings.Join(parts, "; ")
}

// driftSummary is the baselines' drift per round and shape, worst first
// shown last: how much to trust differences of a few percent.
func (rep *Report) driftSummary() string {
	var parts []string
	var worst float64
	for round := 1; round <= rep.Options.Rounds; round++ {
		for _, sh := range storm.Shapes {
			var rates []float64
			for _, r := range rep.runsOf(Baseline, sh) {
				if r.Round == round && r.Error == "" {
					rates = append(rates, r.Rate)
				}
			}
			if len(rates) < 2 {
				continue
			}
			d := drift(rates)
			worst = max(worst, d)
			parts = append(parts, fmt.Sprintf("r%d %s %.1f%%", round, sh, 100*d))
		}
	}
	if len(parts) == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%s (worst %.1f%%)", strings.Join(parts, ", "), 100*worst)
}
