package tracer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// Most attach points have two programs: a BTF-typed one (tp_btf), which
// gets the kernel's own arguments and reads the socket with plain loads,
// and a classic tracepoint one, which costs more on every run because the
// kernel fills a trace record first. The typed one is preferred; the
// classic one is the fallback where typed programs cannot load or attach.
// The syscall tracepoints (accept) have no tp_btf counterpart (a program
// on raw_syscalls:sys_exit would run for every system call): their typed
// kind is a classic tracepoint that reads the fd table and the socket with
// plain loads through typed casts (the bpf_rdonly_cast kfunc, 6.2+).
var typedPrograms = map[string]string{
	rstwatchProgRstwatchAccept4:      rstwatchProgRstwatchAccept4Btf,
	rstwatchProgRstwatchAccept:       rstwatchProgRstwatchAcceptBtf,
	rstwatchProgRstwatchSendReset:    rstwatchProgRstwatchSendResetBtf,
	rstwatchProgRstwatchReceiveReset: rstwatchProgRstwatchReceiveResetBtf,
	rstwatchProgRstwatchSetState:     rstwatchProgRstwatchSetStateBtf,
	rstwatchProgRstwatchDestroySock:  rstwatchProgRstwatchDestroySockBtf,
	rstwatchProgRstwatchExit:         rstwatchProgRstwatchExitBtf,
}

// attached is the program that serves one attach point.
type attached struct {
	point AttachPoint
	prog  string // the program's name (typed or classic)
	typed bool
}

// typedPointExists reports whether the typed program of an attach point
// can attach: for a tp_btf program, the kernel's BTF describes the
// tracepoint; for a syscall one, the tracepoint exists and the kernel has
// the kfunc its typed casts call.
func typedPointExists(kspec *btf.Spec, ap AttachPoint) bool {
	if ap.Group == "syscalls" {
		var fn *btf.Func
		return kspec.TypeByName("bpf_rdonly_cast", &fn) == nil && TracepointExists(ap.Group, ap.Name)
	}
	var typ *btf.Typedef
	return kspec.TypeByName("btf_trace_"+ap.Name, &typ) == nil
}

// choosePrograms picks, for each attach point, the program to load and
// removes the others from spec. Points this kernel lacks entirely are
// skipped (optional) or an error (required).
func (t *Tracer) choosePrograms(spec *ebpf.CollectionSpec, kspec *btf.Spec, typed bool) error {
	t.points = t.points[:0]
	for _, ap := range attachPoints {
		typedName, hasTyped := typedPrograms[ap.prog]
		useTyped := typed && hasTyped && typedPointExists(kspec, ap)
		switch {
		case useTyped:
			delete(spec.Programs, ap.prog)
			t.points = append(t.points, attached{ap, typedName, true})
		case TracepointExists(ap.Group, ap.Name):
			if hasTyped {
				delete(spec.Programs, typedName)
			}
			t.points = append(t.points, attached{ap, ap.prog, false})
		default:
			delete(spec.Programs, ap.prog)
			if hasTyped {
				delete(spec.Programs, typedName)
			}
			if ap.Required {
				return &SetupError{Msg: fmt.Sprintf("the kernel has no tracepoint %s:%s (needs Linux 4.16+ with CONFIG_TRACEPOINTS; is tracefs mounted?)", ap.Group, ap.Name)}
			}
			t.degraded = append(t.degraded, fmt.Sprintf("no tracepoint %s:%s: without %s", ap.Group, ap.Name, ap.Lost))
		}
	}
	return nil
}

// usesTyped says whether any chosen program is BTF-typed.
func (t *Tracer) usesTyped() bool {
	for _, a := range t.points {
		if a.typed {
			return true
		}
	}
	return false
}

// attach attaches every chosen program. A typed program that does not
// attach is replaced by its classic counterpart, loaded on its own with
// the same maps.
func (t *Tracer) attach(spec *ebpf.CollectionSpec, kspec *btf.Spec, maps map[string]*ebpf.Map) error {
	for i := range t.points {
		a := &t.points[i]
		prog := t.coll.Programs[a.prog]
		if prog == nil {
			continue
		}
		var (
			l   link.Link
			err error
		)
		if a.typed && prog.Type() == ebpf.Tracing {
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
			if err != nil && TracepointExists(a.point.Group, a.point.Name) {
				t.log.Debug("typed program did not attach; using the classic tracepoint", "program", a.prog, "error", err)
				t.degraded = append(t.degraded, fmt.Sprintf("the BTF-typed program for %s:%s did not attach (%v): the classic tracepoint is used, which costs more per event",
					a.point.Group, a.point.Name, err))
				if prog, err = t.loadExtra(spec, kspec, maps, a.point.prog); err == nil {
					a.prog, a.typed = a.point.prog, false
					l, err = link.Tracepoint(a.point.Group, a.point.Name, prog, nil)
				}
			}
		} else {
			l, err = link.Tracepoint(a.point.Group, a.point.Name, prog, nil)
		}
		if err != nil {
			if a.point.Required {
				return explain(fmt.Sprintf("attaching to %s:%s", a.point.Group, a.point.Name), err)
			}
			t.degraded = append(t.degraded, fmt.Sprintf("attaching %s:%s failed (%v): without %s", a.point.Group, a.point.Name, err, a.point.Lost))
			a.prog = ""
			continue
		}
		t.links = append(t.links, l)
	}
	return nil
}

// loadExtra loads one program of the object on its own, sharing the maps
// of the main collection.
func (t *Tracer) loadExtra(spec *ebpf.CollectionSpec, kspec *btf.Spec, maps map[string]*ebpf.Map, name string) (*ebpf.Program, error) {
	one := spec.Copy()
	for n := range one.Programs {
		if n != name {
			delete(one.Programs, n)
		}
	}
	if one.Programs[name] == nil {
		return nil, fmt.Errorf("no program %s in the object", name)
	}
	coll, err := ebpf.NewCollectionWithOptions(one, ebpf.CollectionOptions{
		Programs:        ebpf.ProgramOptions{KernelTypes: kspec},
		MapReplacements: maps,
	})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.log.Debug("verifier log", "program", name, "log", fmt.Sprintf("%+v", ve))
		}
		return nil, err
	}
	t.extra = append(t.extra, coll)
	return coll.Programs[name], nil
}

// program finds a loaded program by name in any of the tracer's collections.
func (t *Tracer) program(name string) *ebpf.Program {
	for _, c := range append([]*ebpf.Collection{t.coll, t.fentry}, t.extra...) {
		if c == nil {
			continue
		}
		if p := c.Programs[name]; p != nil {
			return p
		}
	}
	return nil
}

// TypedPrograms says whether the attach points use BTF-typed programs
// (true) or classic tracepoints, by program name.
func (t *Tracer) TypedPrograms() map[string]bool {
	out := map[string]bool{}
	for _, a := range t.points {
		if a.prog != "" {
			out[a.prog] = a.typed
		}
	}
	return out
}
