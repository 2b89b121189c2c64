package tracer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// Capability bits (include/uapi/linux/capability.h).
const (
	capDacOverride   = 1
	capDacReadSearch = 2
	capSysPtrace     = 19
	capSysAdmin      = 21
	capSysResource   = 24
	capPerfmon       = 38
	capBPF           = 39
)

var capNames = map[uint]string{
	capDacOverride: "CAP_DAC_OVERRIDE", capDacReadSearch: "CAP_DAC_READ_SEARCH", capSysPtrace: "CAP_SYS_PTRACE",
	capSysAdmin: "CAP_SYS_ADMIN", capSysResource: "CAP_SYS_RESOURCE", capPerfmon: "CAP_PERFMON", capBPF: "CAP_BPF",
}

// Privileges says whether this process may load and attach the programs,
// and, when it may not, exactly which capabilities it lacks on this kernel
// (measured on 6.18 with setpriv: see deploy/systemd/rstwatch.service).
type Privileges struct {
	OK     bool
	Detail string // what this process has, or what it lacks and what for
	// Missing are the capabilities trace and serve need and this process
	// lacks: CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN) to load and attach,
	// CAP_DAC_READ_SEARCH where tracefs is not readable (it is mode 0700),
	// CAP_SYS_RESOURCE only where BPF memory counts against RLIMIT_MEMLOCK
	// (before 5.11).
	Missing []string
	// Limited says what is not known without a capability this process
	// lacks but does not need: CAP_SYS_PTRACE to read other users'
	// /proc/PID/fd.
	Limited []string
}

// CheckPrivileges reads the effective capabilities and tries what they
// guard: reading tracefs, and whether BPF memory is charged to
// RLIMIT_MEMLOCK.
func CheckPrivileges() Privileges {
	caps, err := effectiveCaps()
	if err != nil {
		return Privileges{Detail: fmt.Sprintf("cannot read this process's capabilities: %v", err)}
	}
	has := func(b uint) bool { return caps&(1<<b) != 0 }
	uid := os.Geteuid()
	var (
		missing []string
		why     []string
	)
	bpfOK := has(capSysAdmin) || has(capBPF) && has(capPerfmon)
	if !bpfOK {
		var m []string
		for _, c := range []uint{capBPF, capPerfmon} {
			if !has(c) {
				m = append(m, capNames[c])
			}
		}
		missing = append(missing, m...)
		why = append(why, and(m)+" (to load and attach BPF programs)")
	}
	if root, err := tracefsAccess(); errors.Is(err, fs.ErrPermission) {
		missing = append(missing, capNames[capDacReadSearch])
		why = append(why, fmt.Sprintf("%s (to read %s, %s)", capNames[capDacReadSearch], root, modeOf(root)))
	}
	if bpfOK && !has(capSysResource) && memlockCharged() {
		missing = append(missing, capNames[capSysResource])
		why = append(why, capNames[capSysResource]+" (this kernel charges BPF memory to RLIMIT_MEMLOCK, which is too low)")
	}
	p := Privileges{OK: len(missing) == 0, Missing: missing}
	if !has(capSysPtrace) && uid != 0 {
		p.Limited = append(p.Limited, fmt.Sprintf("uid %d lacks %s: other users' /proc/PID/{fd,exe,maps,root} are not readable, so ZooKeeper clients' runtimes and versions, servers' zoo.cfg and (--all-senders) the process behind a raw-socket reset are unknown", uid, capNames[capSysPtrace]))
	}
	if !p.OK {
		p.Detail = fmt.Sprintf("uid %d lacks %s", uid, and(why))
		return p
	}
	var held []string
	for _, c := range []uint{capSysAdmin, capBPF, capPerfmon, capDacReadSearch, capDacOverride, capSysResource, capSysPtrace} {
		if has(c) {
			held = append(held, capNames[c])
		}
	}
	switch {
	case uid == 0 && has(capSysAdmin):
		p.Detail = "uid 0 with CAP_SYS_ADMIN"
	case len(held) == 0:
		p.Detail = fmt.Sprintf("uid %d", uid)
	default:
		p.Detail = fmt.Sprintf("uid %d with %s", uid, and(held))
	}
	return p
}

// Fix says what to do about missing privileges.
func (p Privileges) Fix() string {
	if len(p.Missing) == 0 {
		return ""
	}
	return "run rstwatch as root (sudo), or grant it " + and(p.Missing) + " (deploy/systemd/rstwatch.service shows how)"
}

// Preflight finds, before anything is loaded, the setup errors an operator
// must fix first, as one sentence each: missing privileges, no BTF, no
// tracefs. Open finds the same; the CLI calls this before it discovers or
// probes anything, so that these come first.
func Preflight() error {
	if p := CheckPrivileges(); !p.OK {
		return &SetupError{Msg: "not enough privileges to trace: " + p.Detail + ": " + p.Fix()}
	}
	if _, err := btf.LoadKernelSpec(); err != nil {
		return &SetupError{Msg: "the kernel has no BTF (/sys/kernel/btf/vmlinux): rstwatch needs a kernel built with CONFIG_DEBUG_INFO_BTF=y", Detail: err}
	}
	caps, _ := effectiveCaps()
	if !TracefsMounted() && caps&(1<<capSysAdmin) == 0 {
		return &SetupError{Msg: fmt.Sprintf("tracefs is not mounted, and mounting it needs CAP_SYS_ADMIN: run `mount -t tracefs tracefs %s` as root, or rstwatch as root", tracefsRoots[0])}
	}
	return nil
}

// privilegeFix ends the sentence of a permission error found while loading.
const privilegeFix = "run rstwatch as root (sudo), or grant it those capabilities (deploy/systemd/rstwatch.service shows how)"

// tracefsAccess tries to read a tracepoint's id under each tracefs root, as
// attaching does; it returns the root it tried last and the error, nil as
// soon as one is readable. Not mounted is fs.ErrNotExist.
func tracefsAccess() (string, error) {
	err := error(fs.ErrNotExist)
	root := tracefsRoots[0]
	for _, r := range tracefsRoots {
		_, e := os.Stat(r + "/events/tcp")
		if e == nil {
			return r, nil
		}
		if !errors.Is(err, fs.ErrPermission) {
			root, err = r, e // a permission error is the one worth naming
		}
	}
	return root, err
}

func modeOf(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return "not readable"
	}
	var s unix.Stat_t
	owner := ""
	if unix.Stat(path, &s) == nil && s.Uid == 0 {
		owner = ", owned by root"
	}
	return fmt.Sprintf("mode %04o%s", st.Mode().Perm(), owner)
}

// memlockCharged reports whether creating a BPF map here needs more
// RLIMIT_MEMLOCK than this process has: kernels before 5.11 charge BPF
// memory to it instead of the memory cgroup. It lowers the soft limit to
// zero for one tiny map creation, as cilium/ebpf's rlimit package does.
func memlockCharged() bool {
	var old unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, nil, &old); err != nil || old.Cur == unix.RLIM_INFINITY {
		return false
	}
	return !memcgAccounting()
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

// and joins words as "a, b and c".
func and(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}
