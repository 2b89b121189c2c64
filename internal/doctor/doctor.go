// Package doctor checks, one line each, whether this host can run a trace,
// and says how to fix what is missing.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/tracer"
)

// Check is one line of the report.
type Check struct {
	Name     string
	OK       bool
	Required bool   // trace cannot run without it
	Detail   string // what was found
	Fix      string // what to do when not OK
}

func privileges() Check {
	p := tracer.CheckPrivileges()
	c := Check{Name: "privileges", Required: true, OK: p.OK, Detail: p.Detail,
		Fix: "run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE (see deploy/systemd)"}
	return c
}

func kernelBTF() (Check, *btf.Spec) {
	c := Check{Name: "BTF", Required: true,
		Fix: "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (all major distributions since 2020)"}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		c.Detail = err.Error()
		return c, nil
	}
	c.OK, c.Detail = true, "/sys/kernel/btf/vmlinux"
	return c, spec
}

func tracefs() Check {
	c := Check{Name: "tracefs", Required: true,
		Fix: "mount -t tracefs tracefs /sys/kernel/tracing (trace does this itself when it can)"}
	if tracer.TracefsMounted() {
		c.OK, c.Detail = true, "mounted"
	} else if tracer.TracefsUnreadable() {
		c.Detail, c.Fix = "mounted, but not readable by this user", "see privileges"
	} else {
		c.Detail = "not mounted"
	}
	return c
}

func tracepoints() []Check {
	var out []Check
	for _, tp := range tracer.AttachPoints() {
		c := Check{Name: "tracepoint " + tp.Group + ":" + tp.Name, Required: tp.Required}
		if tracer.TracepointExists(tp.Group, tp.Name) {
			c.OK, c.Detail = true, "present"
		} else {
			c.Detail = "missing"
			if tp.Required {
				c.Fix = "needs Linux 4.16+ with CONFIG_TRACEPOINTS and tracefs mounted"
			} else {
				c.Fix = "optional: without it rstwatch loses " + tp.Lost
			}
		}
		out = append(out, c)
	}
	return out
}

func ringBuffer() Check {
	c := Check{Name: "BPF ring buffer", Required: true, Fix: "needs Linux 5.8+"}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		c.Detail = err.Error()
		return c
	}
	c.OK, c.Detail = true, "supported"
	return c
}

// reasons looks for what 6.10+ kernels have: a reason on tcp_send_reset.
func reasons(spec *btf.Spec) Check {
	c := Check{Name: "reset reasons", Required: false,
		Fix: "Linux 6.10+ names the reason of each sent reset; here every reason is UNKNOWN"}
	if spec == nil {
		c.Detail = "unknown (no BTF)"
		return c
	}
	var st *btf.Struct
	if err := spec.TypeByName("trace_event_raw_tcp_send_reset", &st); err == nil {
		for _, m := range st.Members {
			if m.Name == "reason" {
				c.OK, c.Detail = true, "tcp_send_reset reports enum sk_rst_reason"
				return c
			}
		}
	}
	c.Detail = "tcp_send_reset has no reason field"
	return c
}

func kernelVersion() Check {
	var u unix.Utsname
	c := Check{Name: "kernel", OK: true}
	if err := unix.Uname(&u); err != nil {
		c.Detail = err.Error()
		return c
	}
	c.Detail = unix.ByteSliceToString(u.Release[:])
	return c
}

// selfTest loads and attaches the real programs, provokes one reset on
// loopback (a connect to a port nobody listens on) and waits for both of its
// events. It proves the whole path works, and detects kernels whose
// tcp_send_reset does not fire for resets sent without a socket (before
// 6.10 it fires only for active resets).
func selfTest(ctx context.Context) []Check {
	load := Check{Name: "load and attach", Required: true}
	t, err := tracer.Open(tracer.Config{RingBufferSize: 1 << 16})
	if err != nil {
		load.Detail = err.Error()
		var se *tracer.SetupError
		if errors.As(err, &se) && se.Detail != nil {
			load.Fix = "see the sentence above; `rstwatch trace --debug` shows the kernel's own message"
		}
		return []Check{load}
	}
	defer t.Close()
	load.OK, load.Detail = true, "all programs loaded and attached"
	if t.UsesFentryFallback() {
		load.Detail += " (with fentry on tcp_v4/v6_send_reset: this kernel's tcp_send_reset misses resets sent without a full socket)"
	}
	if d := t.Degraded(); len(d) > 0 {
		load.Detail = "loaded with reduced attribution: " + strings.Join(d, "; ")
	}

	port, err := closedPort()
	if err != nil {
		return []Check{load, {Name: "self-test", Detail: err.Error()}}
	}
	target := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var sent, received bool
	go func() {
		time.Sleep(50 * time.Millisecond)
		c, err := net.DialTimeout("tcp", target, time.Second)
		if err == nil {
			c.Close()
		}
	}()
	_ = t.Run(ctx, tracer.Callbacks{Event: func(e *event.Event) {
		if e.Direction == event.Send && e.Local.Port() == port {
			sent = true
		}
		if e.Direction == event.Receive && e.Remote.Port() == port {
			received = true
		}
		if sent && received {
			cancel()
		}
	}})
	recv := Check{Name: "self-test: received reset", Required: true, OK: received,
		Detail: "a refused connect on 127.0.0.1 was reported by tcp_receive_reset"}
	if !received {
		recv.Detail = "no event for a refused connect on 127.0.0.1 within 2 s"
		recv.Fix = "please report with `uname -r`"
	}
	send := Check{Name: "self-test: sent reset without socket", OK: sent,
		Detail: "tcp_send_reset fires for resets the kernel sends without a socket (NO_SOCKET)"}
	if !sent {
		send.Detail = "tcp_send_reset did not fire for a reset sent without a socket"
		send.Fix = "kernels before 6.10 report only active resets (close, linger, abort); refused connects and data for closed connections are seen only as received resets on this host"
	}
	return []Check{load, recv, send}
}

// closedPort returns a loopback port that was just free: a listener is
// opened on port 0 and closed.
func closedPort() (uint16, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free loopback port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port), nil
}

// Run performs every check. The self-test runs only when the static checks
// that it needs passed.
func Run(ctx context.Context) []Check {
	checks := []Check{kernelVersion(), privileges()}
	b, spec := kernelBTF()
	checks = append(checks, b, tracefs(), ringBuffer(), reasons(spec))
	checks = append(checks, tracepoints()...)
	if OK(checks) {
		checks = append(checks, selfTest(ctx)...)
	}
	return checks
}

// OK reports whether every required check passed.
func OK(checks []Check) bool {
	for _, c := range checks {
		if c.Required && !c.OK {
			return false
		}
	}
	return true
}
