package tracer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Capability bits (include/uapi/linux/capability.h).
const (
	capSysAdmin    = 21
	capSysResource = 24
	capPerfmon     = 38
	capBPF         = 39
)

// Privileges says whether this process may load and attach the programs,
// and how it may.
type Privileges struct {
	OK     bool
	Detail string
}

// CheckPrivileges reads the effective capabilities: CAP_SYS_ADMIN, or
// CAP_BPF with CAP_PERFMON (5.8+), are needed to load tracing programs.
func CheckPrivileges() Privileges {
	caps, err := effectiveCaps()
	if err != nil {
		return Privileges{Detail: fmt.Sprintf("cannot read capabilities: %v", err)}
	}
	has := func(b uint) bool { return caps&(1<<b) != 0 }
	switch {
	case has(capSysAdmin):
		return Privileges{true, fmt.Sprintf("uid %d with CAP_SYS_ADMIN", os.Geteuid())}
	case has(capBPF) && has(capPerfmon):
		d := "CAP_BPF and CAP_PERFMON"
		if !has(capSysResource) {
			d += " (no CAP_SYS_RESOURCE: fine on 5.11+, where BPF memory is not charged to RLIMIT_MEMLOCK)"
		}
		return Privileges{true, d}
	}
	return Privileges{Detail: fmt.Sprintf("uid %d without CAP_BPF+CAP_PERFMON or CAP_SYS_ADMIN", os.Geteuid())}
}

func effectiveCaps() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}

const privilegeFix = "run rstwatch as root (sudo), or grant it CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE"
