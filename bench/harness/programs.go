package harness

import (
	"fmt"
	"io"
	"math"

	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// progRow is one BPF program of one configuration under one storm shape.
type progRow struct {
	config, name string
	shape        storm.Shape
	runsPerEvent float64 // median over rounds
	nsPerRun     float64 // median over rounds
}

// programRows breaks each configuration's BPF time down by program, which
// tells where a per-event cost comes from (the reset programs, or the
// socket-state ones a storm also fires).
func (rep *Report) programRows() []progRow {
	var out []progRow
	for _, t := range rep.Tracers {
		for _, sh := range storm.Shapes {
			perProg := map[string][2][]float64{}
			var names []string
			for _, r := range rep.runsOf(t.Name, sh) {
				events := float64(r.units())
				if r.Error != "" || events == 0 {
					continue
				}
				for _, p := range r.BPF {
					v, seen := perProg[p.Name]
					if !seen {
						names = append(names, p.Name)
					}
					ns := math.NaN()
					if p.RunCount > 0 {
						ns = float64(p.Runtime.Nanoseconds()) / float64(p.RunCount)
					}
					v[0] = append(v[0], float64(p.RunCount)/events)
					v[1] = append(v[1], ns)
					perProg[p.Name] = v
				}
			}
			for _, n := range names {
				v := perProg[n]
				out = append(out, progRow{config: t.Name, shape: sh, name: n,
					runsPerEvent: measure.Median(v[0]), nsPerRun: measure.Median(v[1])})
			}
		}
	}
	return out
}

func (rep *Report) programsMarkdown(w io.Writer) {
	rows := rep.programRows()
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nBPF programs (medians over rounds; runs per storm event, and run time per run):")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| configuration | storm | program | runs/event | ns/run | ns/event |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		if r.runsPerEvent < 0.01 {
			continue // attached but idle during the storm (e.g. accept on a refused storm)
		}
		fmt.Fprintf(w, "| %s | %s | %s | %.2f | %s | %s |\n", r.config, r.shape, r.name, r.runsPerEvent,
			nanFmt(r.nsPerRun, "%.0f"), nanFmt(r.nsPerRun*r.runsPerEvent, "%.0f"))
	}
}

func nanFmt(x float64, format string) string {
	if math.IsNaN(x) {
		return "n/a"
	}
	return fmt.Sprintf(format, x)
}
