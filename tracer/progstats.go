package tracer

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ProgramStat is what the kernel counts for one loaded program. RunCount
// and Runtime stay 0 unless BPF statistics are enabled
// (kernel.bpf_stats_enabled=1 or a held BPF_ENABLE_STATS descriptor): the
// kernel only pays for the accounting when somebody asked for it.
type ProgramStat struct {
	Name            string // e.g. "rstwatch_send_reset"
	RunCount        uint64
	Runtime         time.Duration
	RecursionMisses uint64
}

// ProgramStats reads the kernel's counters of every attached program, in
// attach-point order: BTF-typed programs are named with a _btf suffix.
// Programs this kernel did not load are left out.
func (t *Tracer) ProgramStats() ([]ProgramStat, error) {
	var (
		out  []ProgramStat
		errs []error
	)
	names := make([]string, 0, len(t.points)+2)
	for _, a := range t.points {
		if a.prog != "" {
			names = append(names, a.prog)
		}
	}
	names = append(names, rstwatchProgRstwatchFentryV4SendReset, rstwatchProgRstwatchFentryV6SendReset)
	for _, name := range names {
		p := t.program(name)
		if p == nil {
			continue
		}
		s, err := p.Stats()
		if err != nil {
			errs = append(errs, fmt.Errorf("tracer: stats of %s: %w", name, err))
			continue
		}
		out = append(out, ProgramStat{Name: name, RunCount: s.RunCount, Runtime: s.Runtime, RecursionMisses: s.RecursionMisses})
	}
	return out, errors.Join(errs...)
}

// EnableStats turns on the kernel's run-time accounting of BPF programs for
// as long as the returned Closer is open. The kernel drops it by itself when
// the process dies, so nothing is left switched on after a crash. It needs
// CAP_SYS_ADMIN.
func EnableStats() (io.Closer, error) {
	c, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		return nil, fmt.Errorf("tracer: enabling BPF run-time statistics: %w", err)
	}
	return c, nil
}

// Missed sums, over the programs, the runs the kernel skipped because another
// BPF program was already running on that CPU (a softirq interrupting one,
// say). Each is a reset or a socket change rstwatch did not see.
func (t *Tracer) Missed() (uint64, error) {
	ps, err := t.ProgramStats()
	var n uint64
	for _, p := range ps {
		n += p.RecursionMisses
	}
	return n, err
}
