package tracer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// FeatureState is what probing a kernel feature found.
type FeatureState uint8

const (
	// FeatureUnknown: it could not be probed (Detail says why, typically
	// a missing capability); nothing is guessed.
	FeatureUnknown FeatureState = iota
	FeatureYes
	FeatureNo
)

func (s FeatureState) String() string {
	switch s {
	case FeatureYes:
		return "yes"
	case FeatureNo:
		return "no"
	}
	return "unknown"
}

// Feature is one kernel feature rstwatch uses, as found on this host.
type Feature struct {
	Name     string
	State    FeatureState
	Required bool   // trace cannot run without it
	Detail   string // how it was found, or why it could not be probed
	// Without says what rstwatch does not see where an optional feature
	// is missing.
	Without string
}

// Features probes, by trying rather than by comparing kernel versions, the
// kernel features rstwatch uses. Without CAP_BPF and CAP_PERFMON what needs
// a program or a map is reported as unknown, with the reason.
func Features() []Feature {
	caps, _ := effectiveCaps()
	has := func(b uint) bool { return caps&(1<<b) != 0 }
	bpfOK := has(capSysAdmin) || has(capBPF) && has(capPerfmon)
	noBPF := fmt.Sprintf("not probed: loading a BPF program needs CAP_BPF and CAP_PERFMON (uid %d lacks them)", os.Geteuid())
	noMap := fmt.Sprintf("not probed: creating a BPF map needs CAP_BPF (uid %d lacks it)", os.Geteuid())

	var out []Feature
	kspec, err := btf.LoadKernelSpec()
	f := Feature{Name: "BTF", Required: true, State: FeatureYes, Detail: "/sys/kernel/btf/vmlinux"}
	if err != nil {
		f.State, f.Detail = FeatureNo, err.Error()
		if errors.Is(err, fs.ErrPermission) {
			f.State = FeatureUnknown
		}
	}
	out = append(out, f)

	f = Feature{Name: "BPF ring buffer", Required: true}
	switch err := features.HaveMapType(ebpf.RingBuf); {
	case !bpfOK:
		f.Detail = noMap
	case err == nil:
		f.State, f.Detail = FeatureYes, "a BPF_MAP_TYPE_RINGBUF map was created"
	case errors.Is(err, ebpf.ErrNotSupported):
		f.State, f.Detail = FeatureNo, "BPF_MAP_TYPE_RINGBUF is not supported (Linux 5.8+ has it)"
	default:
		f.Detail = "probe failed: " + err.Error()
	}
	out = append(out, f)

	f = Feature{Name: "reset reasons", Without: "the reason of each sent reset (every reason is UNKNOWN)"}
	switch {
	case kspec == nil:
		f.Detail = "not probed: no BTF"
	case hasMember(kspec, "trace_event_raw_tcp_send_reset", "reason"):
		f.State, f.Detail = FeatureYes, "tcp_send_reset reports enum sk_rst_reason"
	default:
		f.State, f.Detail = FeatureNo, "tcp_send_reset has no reason field (Linux 6.10+ has it)"
	}
	out = append(out, f)

	tracefsRoot, tracefsErr := tracefsAccess()
	for _, ap := range attachPoints {
		f := Feature{Name: "tracepoint " + ap.Group + ":" + ap.Name, Required: ap.Required, Without: ap.Lost}
		f.State, f.Detail = tracepointState(kspec, tracefsRoot, tracefsErr, ap.Group, ap.Name)
		out = append(out, f)
	}

	out = append(out, tracingFeature(bpfOK, noBPF, "BTF-typed tracepoints (tp_btf)", ebpf.AttachTraceRawTp, "tcp_send_reset",
		"programs that read the kernel's own arguments instead of a trace record"))
	out = append(out, iterFeature(bpfOK, noBPF))
	out = append(out, tracingFeature(bpfOK, noBPF, "BTF-typed net:net_dev_queue", ebpf.AttachTraceRawTp, "net_dev_queue",
		"resets the TCP stack did not make (a firewall's reject, a raw socket's forgery) with --all-senders"))
	out = append(out, tracingFeature(bpfOK, noBPF, "fentry", ebpf.AttachTraceFEntry, "tcp_v4_send_reset",
		"before Linux 6.10, resets sent without a full socket (refused connects, data for closed connections) are seen only where a local peer receives them"))

	f = Feature{Name: "BPF memory accounting"}
	switch {
	case !bpfOK:
		f.Detail = noMap + "; kernels since 5.11 use the memory cgroup"
	case memcgAccounting():
		f.State, f.Detail = FeatureYes, "memory cgroup: RLIMIT_MEMLOCK and CAP_SYS_RESOURCE are not needed"
	default:
		f.State, f.Detail = FeatureNo, "charged to RLIMIT_MEMLOCK (before Linux 5.11): rstwatch raises it, which needs CAP_SYS_RESOURCE"
	}
	out = append(out, f)
	return out
}

func hasMember(spec *btf.Spec, structName, member string) bool {
	var st *btf.Struct
	if err := spec.TypeByName(structName, &st); err != nil {
		return false
	}
	for _, m := range st.Members {
		if m.Name == member {
			return true
		}
	}
	return false
}

// tracepointState looks in tracefs; where tracefs cannot be read, the
// kernel's BTF still names every tracepoint defined with TRACE_EVENT
// (btf_trace_NAME), though not the syscall ones.
func tracepointState(kspec *btf.Spec, root string, rootErr error, group, name string) (FeatureState, string) {
	if rootErr == nil {
		_, err := os.Stat(root + "/events/" + group + "/" + name + "/id")
		switch {
		case err == nil:
			return FeatureYes, "present in " + root
		case errors.Is(err, fs.ErrNotExist):
			return FeatureNo, "not in " + root + "/events"
		}
		rootErr = err
	}
	why := "tracefs is not mounted"
	if errors.Is(rootErr, fs.ErrPermission) {
		why = fmt.Sprintf("tracefs is not readable by uid %d", os.Geteuid())
	} else if !errors.Is(rootErr, fs.ErrNotExist) {
		why = rootErr.Error()
	}
	if kspec != nil && group != "syscalls" {
		var typedef *btf.Typedef
		if err := kspec.TypeByName("btf_trace_"+name, &typedef); err == nil {
			return FeatureYes, "in the kernel's BTF (" + why + ")"
		}
		return FeatureNo, "not in the kernel's BTF (" + why + ")"
	}
	return FeatureUnknown, "not probed: " + why
}

// tracingFeature loads an empty BTF-typed program of this attach type and
// attaches it for a moment: the kernel may refuse either step.
func tracingFeature(bpfOK bool, noBPF, name string, at ebpf.AttachType, fn, without string) Feature {
	f := Feature{Name: name, Without: without}
	if !bpfOK {
		f.Detail = noBPF
		return f
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: at, AttachTo: fn, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		f.State, f.Detail = FeatureNo, fmt.Sprintf("loading a program on %s was refused: %v", fn, shortErr(err))
		return f
	}
	defer prog.Close()
	l, err := link.AttachTracing(link.TracingOptions{Program: prog, AttachType: at})
	if err != nil {
		f.State, f.Detail = FeatureNo, fmt.Sprintf("attaching to %s was refused: %v", fn, shortErr(err))
		return f
	}
	l.Close()
	f.State, f.Detail = FeatureYes, "an empty program attached to "+fn
	return f
}

// iterFeature loads an empty task_file iterator: the seeder that names
// the owners of sockets older than rstwatch is one.
func iterFeature(bpfOK bool, noBPF string) Feature {
	f := Feature{Name: "BPF iterator (iter/task_file)",
		Without: "owners of sockets made before rstwatch started (and of io_uring accepts) are not named"}
	if !bpfOK {
		f.Detail = noBPF
		return f
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceIter, AttachTo: "task_file", License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		f.State, f.Detail = FeatureNo, fmt.Sprintf("loading a task_file iterator was refused: %v", shortErr(err))
		return f
	}
	prog.Close()
	f.State, f.Detail = FeatureYes, "an empty task_file iterator loaded"
	return f
}

// shortErr keeps the errno of a load or attach failure, not the verifier's
// whole log.
func shortErr(err error) error {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return err
}

// memcgAccounting reports whether the kernel charges BPF memory to the
// memory cgroup (5.11+) rather than to RLIMIT_MEMLOCK: with the soft limit
// at zero for a moment, a tiny map can still be created. Needs CAP_BPF.
func memcgAccounting() bool {
	var old unix.Rlimit
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, nil, &old); err != nil {
		return false
	}
	zero := unix.Rlimit{Cur: 0, Max: old.Max}
	if err := unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &zero, &old); err != nil {
		return false
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	_ = unix.Prlimit(0, unix.RLIMIT_MEMLOCK, &old, nil)
	if err != nil {
		return false
	}
	m.Close()
	return true
}
