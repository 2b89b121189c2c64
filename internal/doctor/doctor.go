// Package doctor checks, one line each, whether this host can run a trace,
// and says how to fix what is missing. Every line names the real cause: a
// missing capability is a permission problem, never reported as an old
// kernel, and what could not be probed says so instead of guessing.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/workload"
	"github.com/rstwatch/rstwatch/tracer"
)

// Status of a check.
type Status uint8

const (
	Pass Status = iota
	Fail        // trace cannot run until it is fixed
	Warn        // trace runs, with less attribution
	Skip        // could not be probed; Detail says why
)

func (s Status) String() string {
	return [...]string{"ok", "FAIL", "warn", "skip"}[s]
}

// Check is one line of the report.
type Check struct {
	Name     string
	Status   Status
	Required bool   // trace cannot run without it
	Detail   string // what was found
	Fix      string // what to do when not OK
}

func kernelVersion() Check {
	var u unix.Utsname
	c := Check{Name: "kernel"}
	if err := unix.Uname(&u); err != nil {
		c.Detail = err.Error()
		return c
	}
	c.Detail = unix.ByteSliceToString(u.Release[:])
	return c
}

func privileges(p tracer.Privileges) []Check {
	c := Check{Name: "privileges", Required: true, Detail: p.Detail}
	if !p.OK {
		c.Status, c.Fix = Fail, p.Fix()
	}
	out := []Check{c}
	for _, l := range p.Limited {
		out = append(out, Check{Name: "other users' processes", Status: Warn, Detail: l,
			Fix: "grant CAP_SYS_PTRACE too, or run as root"})
	}
	return out
}

func tracefs() Check {
	c := Check{Name: "tracefs", Required: true}
	switch {
	case tracer.TracefsMounted():
		c.Detail = "mounted"
	case tracer.TracefsUnreadable():
		c.Status = Fail
		c.Detail = fmt.Sprintf("mounted, but /sys/kernel/tracing is not readable by uid %d (%s)", os.Geteuid(), modeOf("/sys/kernel/tracing"))
		c.Fix = "grant CAP_DAC_READ_SEARCH, or run as root"
	default:
		c.Status, c.Detail = Fail, "not mounted"
		c.Fix = "mount -t tracefs tracefs /sys/kernel/tracing (trace does this itself when run as root)"
	}
	return c
}

func modeOf(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("mode %04o", st.Mode().Perm())
}

// features turns the kernel features rstwatch uses into checks.
func features(fs []tracer.Feature) []Check {
	var out []Check
	reasons := tracer.FeatureUnknown
	for _, f := range fs {
		if f.Name == "reset reasons" {
			reasons = f.State
		}
	}
	for _, f := range fs {
		c := Check{Name: f.Name, Required: f.Required, Detail: f.Detail}
		switch f.State {
		case tracer.FeatureYes:
			c.Status = Pass
		case tracer.FeatureUnknown:
			c.Status = Skip
			if strings.Contains(f.Detail, "CAP_") {
				c.Fix = "see privileges"
			}
		case tracer.FeatureNo:
			c.Status = Warn
			if f.Required {
				c.Status = Fail
			}
			c.Fix = fix(f)
		}
		switch f.Name {
		case "BTF-typed tracepoints (tp_btf)", "BPF memory accounting":
			continue // what rstwatch version shows; nothing to fix here
		case "fentry":
			if reasons == tracer.FeatureYes {
				// The tracepoint sees every reset: fentry is not needed.
				c.Status, c.Fix = Pass, ""
				c.Detail = "not needed here: tcp_send_reset sees every reset (" + f.State.String() + ": " + f.Detail + ")"
			}
		}
		out = append(out, c)
	}
	return out
}

// cgroupV2 checks what names owners' units, containers and pods.
func cgroupV2() Check {
	c := Check{Name: "cgroup v2 hierarchy", Status: Pass}
	root, err := workload.Probe()
	if err != nil {
		c.Status, c.Detail = Warn, err.Error()
		c.Fix = "optional: without it owners' systemd units, containers and pods are not named (pid and name still are)"
		return c
	}
	c.Detail = "mounted at " + root
	return c
}

func fix(f tracer.Feature) string {
	switch {
	case f.Name == "BTF":
		return "use a kernel built with CONFIG_DEBUG_INFO_BTF=y (all major distributions since 2020)"
	case f.Name == "BPF ring buffer":
		return "needs Linux 5.8 or later"
	case f.Name == "reset reasons":
		return "Linux 6.10+ names the reason of each sent reset; here every reason is UNKNOWN"
	case f.Required:
		return "needs Linux 4.16+ with CONFIG_TRACEPOINTS"
	case f.Without != "":
		return "optional: without it rstwatch does not see " + f.Without
	}
	return ""
}

// selfTest loads and attaches the real programs, provokes one reset on
// loopback (a connect to a port nobody listens on) and waits for both of its
// events. It proves the whole path works, and detects kernels whose
// tcp_send_reset does not fire for resets sent without a socket (before
// 6.10 it fires only for active resets).
func selfTest(ctx context.Context) []Check {
	load := Check{Name: "load and attach", Required: true}
	port, err := closedPort()
	if err != nil {
		load.Status, load.Detail = Fail, err.Error()
		return []Check{load}
	}
	// Only this test's port: other resets on a busy host do not matter.
	t, err := tracer.Open(tracer.Config{RingBufferSize: 1 << 16, Ports: []uint16{port}})
	if err != nil {
		load.Status, load.Detail = Fail, err.Error()
		var se *tracer.SetupError
		if errors.As(err, &se) && se.Detail != nil {
			load.Fix = "`rstwatch trace --debug` shows the kernel's own message"
		}
		return []Check{load}
	}
	defer t.Close()
	load.Detail = "all programs loaded and attached"
	if t.UsesFentryFallback() {
		load.Detail += " (with fentry on tcp_v4/v6_send_reset: this kernel's tcp_send_reset misses resets sent without a full socket)"
	}
	if d := t.Degraded(); len(d) > 0 {
		load.Status, load.Detail = Warn, "loaded with reduced attribution: "+strings.Join(d, "; ")
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
	recv := Check{Name: "self-test: received reset", Required: true,
		Detail: "a refused connect on 127.0.0.1 was reported by tcp_receive_reset"}
	if !received {
		recv.Status = Fail
		recv.Detail = "no event for a refused connect on 127.0.0.1 within 2 s"
		recv.Fix = "please report with `uname -r`"
	}
	send := Check{Name: "self-test: sent reset without socket",
		Detail: "tcp_send_reset fires for resets the kernel sends without a socket (NO_SOCKET)"}
	if !sent {
		send.Status = Warn
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
	checks := []Check{kernelVersion()}
	checks = append(checks, privileges(tracer.CheckPrivileges())...)
	checks = append(checks, tracefs())
	checks = append(checks, features(tracer.Features())...)
	checks = append(checks, cgroupV2())
	if OK(checks) {
		checks = append(checks, selfTest(ctx)...)
	}
	return checks
}

// OK reports whether every required check passed.
func OK(checks []Check) bool {
	for _, c := range checks {
		if c.Required && c.Status != Pass {
			return false
		}
	}
	return true
}
