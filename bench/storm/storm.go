// Package storm generates TCP resets on 127.0.0.1 as fast as a few threads
// can, and counts exactly how many it caused. It runs in its own process
// (see Spawn) so that its CPU time is neither the tracer's nor the harness's.
package storm

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Shape is the kind of reset the storm produces.
type Shape string

const (
	// Refused connects to a port nobody listens on: the kernel answers the
	// SYN with a reset that belongs to no socket.
	Refused Shape = "refused"
	// Linger closes established connections with SO_LINGER 0: the closing
	// process sends the reset from a full socket.
	Linger Shape = "linger"
	// Churn is not a storm: ordinary connections without any reset (a web
	// server and its client, bench/churn), which the harness runs itself.
	Churn Shape = "churn"
)

// Shapes lists every workload, in the order the harness runs them.
var Shapes = []Shape{Refused, Linger, Churn}

// IsStorm says whether the shape makes resets (Run can do it).
func (s Shape) IsStorm() bool { return s == Refused || s == Linger }

// ParseShape checks a shape name.
func ParseShape(s string) (Shape, error) {
	for _, sh := range Shapes {
		if string(sh) == s {
			return sh, nil
		}
	}
	return "", fmt.Errorf("unknown workload %q (want refused, linger or churn)", s)
}

// EventsPerReset: on loopback every reset is both sent and received here,
// and each fires its own tracepoint.
const EventsPerReset = 2

// Result is what one storm did.
type Result struct {
	Shape   Shape             `json:"shape"`
	Workers int               `json:"workers"`
	Resets  uint64            `json:"resets"`
	Elapsed time.Duration     `json:"elapsed_ns"`
	Errors  map[string]uint64 `json:"errors,omitempty"`
	// CPU is the storm process's user+sys time; filled in by Spawn.
	CPU time.Duration `json:"cpu_ns,omitempty"`
}

// Rate is resets per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Resets) / r.Elapsed.Seconds()
}

// Events is how many tracepoint events the storm caused.
func (r Result) Events() uint64 { return r.Resets * EventsPerReset }

// ErrorSummary is the errors as one short line, most frequent first.
func (r Result) ErrorSummary() string {
	type kv struct {
		k string
		v uint64
	}
	var all []kv
	for k, v := range r.Errors {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v })
	var parts []string
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%s×%d", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}

// counter is one worker's tally; each worker owns its own, so the hot loop
// shares no cache line with the other workers.
type counter struct {
	resets uint64
	errors map[string]uint64
	_      [64]byte
}

// fail records an error and backs off briefly, so that a persistent error
// (port exhaustion, fd limit) does not become a tight loop of failures.
func (c *counter) fail(op string, err error) {
	if c.errors == nil {
		c.errors = map[string]uint64{}
	}
	c.errors[op+": "+errName(err)]++
	time.Sleep(time.Millisecond)
}

func errName(err error) string {
	if en, ok := err.(unix.Errno); ok {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
	}
	return err.Error()
}

// worker runs until stop is set; it must only ever touch 127.0.0.1.
type worker func(stop *atomic.Bool, c *counter)

// Run storms for d with n workers, each on its own OS thread.
func Run(shape Shape, n int, d time.Duration) (Result, error) {
	if n < 1 {
		return Result{}, fmt.Errorf("storm: %d workers: want at least 1", n)
	}
	var (
		w       worker
		cleanup func()
		err     error
	)
	switch shape {
	case Refused:
		w, cleanup, err = newRefused()
	case Linger:
		w, cleanup, err = newLinger(n)
	default:
		return Result{}, fmt.Errorf("storm: unknown shape %q", shape)
	}
	if err != nil {
		return Result{}, err
	}
	defer cleanup()

	var stop atomic.Bool
	counters := make([]counter, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range counters {
		wg.Add(1)
		go func(c *counter) {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			w(&stop, c)
		}(&counters[i])
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	res := Result{Shape: shape, Workers: n, Elapsed: time.Since(start)}
	for _, c := range counters {
		res.Resets += c.resets
		for k, v := range c.errors {
			if res.Errors == nil {
				res.Errors = map[string]uint64{}
			}
			res.Errors[k] += v
		}
	}
	return res, nil
}
