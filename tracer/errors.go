package tracer

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// SetupError is a failure to load or attach, with one sentence an operator
// can act on. Detail keeps the underlying error (a verifier log, say) for
// --debug.
type SetupError struct {
	Msg    string
	Detail error
}

func (e *SetupError) Error() string { return e.Msg }
func (e *SetupError) Unwrap() error { return e.Detail }

// explain turns a load or attach error into a SetupError that names the
// real cause: missing capabilities (exactly which), a kernel that lacks a
// feature, or a kernel that refuses although the capabilities are there.
func explain(what string, err error) error {
	p := CheckPrivileges()
	switch {
	case errors.Is(err, os.ErrPermission) && !p.OK,
		errors.Is(err, ebpf.ErrNotSupported) && !p.OK:
		return &SetupError{
			Msg:    fmt.Sprintf("%s: permission denied: %s: %s", what, p.Detail, p.Fix()),
			Detail: err,
		}
	case errors.Is(err, os.ErrPermission):
		return &SetupError{
			Msg: fmt.Sprintf("%s: permission denied although this process has what the kernel asks for (%s): "+
				"a security module, kernel lockdown or a seccomp filter may forbid it (--debug shows the kernel's error)", what, p.Detail),
			Detail: err,
		}
	case errors.Is(err, ebpf.ErrNotSupported):
		return &SetupError{
			Msg:    fmt.Sprintf("%s: this kernel does not support it (needs BPF ring buffers, Linux 5.8+, and BTF); `rstwatch doctor` says what is missing", what),
			Detail: err,
		}
	case errors.Is(err, os.ErrNotExist):
		return &SetupError{
			Msg:    fmt.Sprintf("%s: not found: is tracefs mounted (mount -t tracefs tracefs /sys/kernel/tracing) and does the kernel have TCP tracepoints?", what),
			Detail: err,
		}
	case errors.Is(err, unix.ENOMEM):
		return &SetupError{
			Msg:    fmt.Sprintf("%s: the kernel could not allocate the maps' memory: use a smaller --ring-buffer-size or --owner-table-size", what),
			Detail: err,
		}
	}
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return &SetupError{
			Msg:    fmt.Sprintf("%s: the kernel's verifier rejected the program (run with --debug for its log); please report it with `uname -r`", what),
			Detail: err,
		}
	}
	return &SetupError{Msg: fmt.Sprintf("%s: %v", what, err), Detail: err}
}
