package harness

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/rstwatch/rstwatch/bench/measure"
	"github.com/rstwatch/rstwatch/bench/storm"
)

// Report is a whole bench: what ran where, every run, medians and targets.
type Report struct {
	Env     Env          `json:"env"`
	Options OptionsJSON  `json:"options"`
	Tracers []TracerInfo `json:"configurations"`
	Skipped []Skip       `json:"skipped,omitempty"`
	Runs    []Run        `json:"runs"`
	Summary []Row        `json:"summary"`
	Targets []Target     `json:"targets"`
}

// OptionsJSON is how the bench was run.
type OptionsJSON struct {
	Rstwatch string        `json:"rstwatch"`
	Rounds   int           `json:"rounds"`
	Duration time.Duration `json:"run_duration_ns"`
	Workers  int           `json:"storm_workers"`
	Settle   time.Duration `json:"settle_ns"`
}

func reportOptions(o Options) OptionsJSON {
	return OptionsJSON{Rstwatch: o.Rstwatch, Rounds: o.Rounds, Duration: o.Duration, Workers: o.Workers, Settle: o.Settle}
}

type TracerInfo struct {
	Name string `json:"name"`
	How  string `json:"how"`
}

type Skip struct {
	Name string `json:"name"`
	Why  string `json:"why"`
}

// Row is one configuration under one storm shape, over all rounds.
type Row struct {
	Config string      `json:"config"`
	Shape  storm.Shape `json:"shape"`
	Runs   int         `json:"runs"`
	Errors int         `json:"errors"`
	// Medians over the rounds.
	Ratio         *float64 `json:"ratio"`
	Rate          *float64 `json:"resets_per_s"`
	CPUPerEventUs *float64 `json:"tracer_cpu_us_per_event"`
	ReceivedFrac  *float64 `json:"received_fraction"`
	BPFNsPerEvent *float64 `json:"bpf_ns_per_event"`
	// BPFNetNsPerEvent is BPFNsPerEvent minus the floor's in the same
	// round (floorOf): without the statistics' own clock reads and the
	// attachment.
	BPFNetNsPerEvent *float64 `json:"bpf_net_ns_per_event"`
	// Worst over the rounds.
	LostMax     *uint64  `json:"lost_max"`
	PeakRSSMax  *uint64  `json:"peak_rss_bytes_max"`
	ReceivedMin *float64 `json:"received_fraction_min"`
	Unit        string   `json:"unit"`
}

func (rep *Report) finish() {
	rep.Summary = nil
	for _, t := range rep.Tracers {
		for _, sh := range storm.Shapes {
			if row, ok := rep.row(t.Name, sh); ok {
				rep.Summary = append(rep.Summary, row)
			}
		}
	}
	rep.Targets = rep.targets()
}

func (rep *Report) runsOf(config string, shape storm.Shape) []Run {
	var out []Run
	for _, r := range rep.Runs {
		if r.Config == config && r.Shape == shape {
			out = append(out, r)
		}
	}
	return out
}

func (rep *Report) row(config string, shape storm.Shape) (Row, bool) {
	runs := rep.runsOf(config, shape)
	if len(runs) == 0 {
		return Row{}, false
	}
	row := Row{Config: config, Shape: shape}
	var ratio, rate, cpu, frac, bpf, net []float64
	for _, r := range runs {
		if r.Error != "" {
			row.Errors++
			continue
		}
		row.Runs++
		row.Unit = r.Unit
		rate = append(rate, r.Rate)
		ratio = append(ratio, deref(r.Ratio))
		cpu = append(cpu, deref(r.CPUPerEventUs))
		bpf = append(bpf, deref(r.BPFNsPerEvent))
		net = append(net, deref(r.BPFNsPerEvent)-rep.floorNs(r.Round, shape))
		if r.Received != nil && r.Expected > 0 {
			f := float64(*r.Received) / float64(r.Expected)
			frac = append(frac, f)
			if row.ReceivedMin == nil || f < *row.ReceivedMin {
				row.ReceivedMin = &f
			}
		}
		row.LostMax = maxPtr(row.LostMax, r.Lost)
		row.PeakRSSMax = maxPtr(row.PeakRSSMax, r.PeakRSS)
	}
	row.Ratio, row.Rate = opt(measure.Median(ratio)), opt(measure.Median(rate))
	row.CPUPerEventUs, row.BPFNsPerEvent = opt(measure.Median(cpu)), opt(measure.Median(bpf))
	row.ReceivedFrac = opt(measure.Median(frac))
	row.BPFNetNsPerEvent = opt(measure.Median(net))
	return row, true
}

// floorOf is the configuration a workload's BPF costs are net of: the empty
// reset programs in a storm, the empty typed programs on every hook in the
// churn.
func floorOf(shape storm.Shape) string {
	if shape == storm.Churn {
		return cfgFloorHooksTyped
	}
	return cfgFloorEmpty
}

// floorNs is the floor's BPF ns/event (ns/connection) in a round, NaN if
// unknown.
func (rep *Report) floorNs(round int, shape storm.Shape) float64 {
	for _, r := range rep.runsOf(floorOf(shape), shape) {
		if r.Round == round && r.Error == "" {
			return deref(r.BPFNsPerEvent)
		}
	}
	return math.NaN()
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func opt(x float64) *float64 {
	if math.IsNaN(x) {
		return nil
	}
	return &x
}

func maxPtr(cur, v *uint64) *uint64 {
	if v == nil {
		return cur
	}
	if cur == nil || *v > *cur {
		x := *v
		return &x
	}
	return cur
}

// Save writes the report as JSON to dir/<UTC timestamp>.json, through a
// temporary file so that an interrupted write leaves no half report.
func (rep *Report) Save(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results directory: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding the results: %w", err)
	}
	path := filepath.Join(dir, rep.Env.Time.Format("20060102T150405Z")+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("writing the results: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("writing the results: %w", err)
	}
	return path, nil
}
