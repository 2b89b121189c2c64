package measure

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
)

// ParseFdinfoProgID returns the prog_id of a BPF program or link fd from
// the contents of its /proc/PID/fdinfo file, and whether there is one.
func ParseFdinfoProgID(fdinfo []byte) (uint32, bool) {
	for line := range strings.SplitSeq(string(fdinfo), "\n") {
		rest, ok := strings.CutPrefix(line, "prog_id:")
		if !ok {
			continue
		}
		id, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 32)
		if err != nil || id == 0 {
			return 0, false
		}
		return uint32(id), true
	}
	return 0, false
}

// ProcessProgIDs lists the BPF programs a process holds through program or
// link fds. Unlike a list of every program on the host, it cannot pick up
// programs that other users load at the same time.
func ProcessProgIDs(pid int) ([]ebpf.ProgramID, error) {
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing the BPF programs of %d: %w", pid, err)
	}
	var ids []ebpf.ProgramID
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if id, ok := ParseFdinfoProgID(b); ok && !slices.Contains(ids, ebpf.ProgramID(id)) {
			ids = append(ids, ebpf.ProgramID(id))
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// ProgStat is one program's cumulative run-time statistics.
type ProgStat struct {
	ID       ebpf.ProgramID `json:"id"`
	Name     string         `json:"name"`
	Type     string         `json:"type"`
	Runtime  time.Duration  `json:"run_time_ns"`
	RunCount uint64         `json:"run_cnt"`
}

// Programs holds references to a tracer's programs so their statistics can
// be read until the end of a run, even after the tracer exits.
type Programs struct {
	progs []*ebpf.Program
	owned []bool
}

// OpenPrograms opens programs by ID.
func OpenPrograms(ids []ebpf.ProgramID) (*Programs, error) {
	p := &Programs{}
	for _, id := range ids {
		prog, err := ebpf.NewProgramFromID(id)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("opening BPF program %d: %w", id, err)
		}
		p.progs, p.owned = append(p.progs, prog), append(p.owned, true)
	}
	return p, nil
}

// WrapPrograms uses programs this process loaded; Close leaves them open.
func WrapPrograms(progs []*ebpf.Program) *Programs {
	return &Programs{progs: progs, owned: make([]bool, len(progs))}
}

// Snapshot reads every program's statistics now. They only grow while BPF
// statistics are enabled (ebpf.EnableStats).
func (p *Programs) Snapshot() ([]ProgStat, error) {
	var out []ProgStat
	for _, prog := range p.progs {
		info, err := prog.Info()
		if err != nil {
			return nil, fmt.Errorf("BPF program info: %w", err)
		}
		st, err := prog.Stats()
		if err != nil {
			return nil, fmt.Errorf("BPF program %s statistics: %w", info.Name, err)
		}
		id, _ := info.ID()
		out = append(out, ProgStat{ID: id, Name: info.Name, Type: info.Type.String(),
			Runtime: st.Runtime, RunCount: st.RunCount})
	}
	return out, nil
}

// Close releases the programs this package opened.
func (p *Programs) Close() error {
	var errs []error
	for i, prog := range p.progs {
		if p.owned[i] {
			errs = append(errs, prog.Close())
		}
	}
	p.progs = nil
	return errors.Join(errs...)
}

// DiffStats is after minus before, per program (matched by ID).
func DiffStats(before, after []ProgStat) []ProgStat {
	var out []ProgStat
	for _, a := range after {
		d := a
		for _, b := range before {
			if b.ID == a.ID {
				d.Runtime -= b.Runtime
				d.RunCount -= b.RunCount
			}
		}
		out = append(out, d)
	}
	return out
}

// TotalRuntime sums the programs' run time.
func TotalRuntime(stats []ProgStat) time.Duration {
	var t time.Duration
	for _, s := range stats {
		t += s.Runtime
	}
	return t
}
