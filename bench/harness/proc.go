package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rstwatch/rstwatch/bench/measure"
)

// errNotReady is a tracer that exited or timed out before it was attached.
var errNotReady = errors.New("tracer not ready")

const (
	readyTimeout = 60 * time.Second // bpftrace compiles its script first
	stopTimeout  = 30 * time.Second // rstwatch drains its ring buffer first
)

// syncBuffer collects a child's stderr while the harness polls it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Only the head and the closing lines matter; a chatty tracer must
	// not grow the harness.
	if b.buf.Len() > 1<<20 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// proc is a tracer running as its own process.
type proc struct {
	cmd     *exec.Cmd
	stdout  *os.File
	stderr  *syncBuffer
	exited  chan struct{}
	waitErr error
	cpuMark time.Duration
	peak    uint64
}

// startProc starts argv with stdout to stdoutPath ("" discards it). The
// child gets its own process group, so a Ctrl-C at the terminal reaches the
// harness only, which then stops it cleanly; Pdeathsig kills it if the
// harness dies without doing so.
func startProc(argv []string, stdoutPath string) (*proc, error) {
	p := &proc{stderr: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p.cmd.Stderr = p.stderr
	if stdoutPath != "" {
		f, err := os.Create(stdoutPath)
		if err != nil {
			return nil, fmt.Errorf("output file for %s: %w", argv[0], err)
		}
		p.stdout, p.cmd.Stdout = f, f
	}
	if err := p.cmd.Start(); err != nil {
		p.closeStdout()
		return nil, fmt.Errorf("starting %s: %w", strings.Join(argv, " "), err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) closeStdout() {
	if p.stdout != nil {
		p.stdout.Close()
		p.stdout = nil
	}
}

// waitReady polls ready until it holds, the process exits or time runs out.
func (p *proc) waitReady(ctx context.Context, what string, ready func() bool) error {
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.exited:
			return fmt.Errorf("%w: %s exited (%v) before %s: %s", errNotReady, p.cmd.Path, p.waitErr, what, lastLines(p.stderr.Bytes(), 3))
		case <-deadline.C:
			return fmt.Errorf("%w: %s: no %s within %v: %s", errNotReady, p.cmd.Path, what, readyTimeout, lastLines(p.stderr.Bytes(), 3))
		case <-tick.C:
		}
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) programs() (*measure.Programs, error) {
	ids, err := measure.ProcessProgIDs(p.pid())
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return measure.OpenPrograms(ids)
}

func (p *proc) mark() error {
	cpu, err := measure.ProcessCPU(p.pid())
	p.cpuMark = cpu
	return err
}

// end stops the process (SIGINT, then SIGKILL) and fills in its CPU since
// mark and its peak RSS.
func (p *proc) end(ctx context.Context) (tally, error) {
	// VmHWM while it lives, read again every few milliseconds until it
	// exits (a summary written at exit may raise it). Not the exit's
	// rusage: the process was started by vfork and exec, and Linux counts
	// the parent's memory, which the child shared until exec, in the
	// child's maxrss (the bench's own ~20-37 MB were reported as
	// tcpdump's).
	p.samplePeak()
	p.cmd.Process.Signal(syscall.SIGINT)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var killed bool
wait:
	for {
		select {
		case <-p.exited:
			break wait
		case <-tick.C:
			p.samplePeak()
		case <-t.C:
			killed = true
			break wait
		case <-ctx.Done():
			killed = true
			break wait
		}
	}
	if killed {
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.closeStdout()
	var tl tally
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		tl.CPU, tl.HaveCPU = total-p.cpuMark, true
		tl.PeakRSS = p.peak
	}
	if killed {
		return tl, fmt.Errorf("%s did not stop within %v of SIGINT: killed", p.cmd.Path, stopTimeout)
	}
	return tl, nil
}

// samplePeak raises p.peak to the process's VmHWM, if it still has one.
func (p *proc) samplePeak() {
	if hwm, err := measure.PeakRSS(p.pid()); err == nil {
		p.peak = max(p.peak, hwm)
	}
}

// kill is for error paths: stop the process without caring how.
func (p *proc) kill() {
	p.cmd.Process.Kill()
	<-p.exited
	p.closeStdout()
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
