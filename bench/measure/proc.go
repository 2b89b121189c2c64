package measure

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the times in /proc/PID/stat. Linux reports them in
// USER_HZ, which is 100 on every architecture Go supports, whatever the
// kernel's own HZ.
const userHZ = 100

// ParseStatCPU returns utime+stime from the contents of /proc/PID/stat.
func ParseStatCPU(stat []byte) (time.Duration, error) {
	// comm (field 2) may hold spaces and parentheses: fields are counted
	// from the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %q: no ')' after comm", truncate(stat))
	}
	f := strings.Fields(string(stat[i+1:]))
	// After comm: state(3) ... utime(14) stime(15), i.e. f[11] and f[12].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat %q: %d fields after comm, want at least 13", truncate(stat), len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: cpu time %q: %w", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// ProcessCPU is a live process's user+sys CPU time so far.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return ParseStatCPU(b)
}

// ParseVmHWM returns the peak resident set size in bytes from the contents
// of /proc/PID/status.
func ParseVmHWM(status []byte) (uint64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: VmHWM line %q: want \"N kB\"", line)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: VmHWM %q: %w", f[0], err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("/proc status: no VmHWM line (a kernel thread?)")
}

// PeakRSS is a live process's VmHWM in bytes.
func PeakRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS of %d: %w", pid, err)
	}
	return ParseVmHWM(b)
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
