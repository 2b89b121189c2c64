package harness

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Env is the machine a bench ran on.
type Env struct {
	Time           time.Time         `json:"time"`
	Kernel         string            `json:"kernel"`
	CPUs           int               `json:"cpus"`
	LoadStart      string            `json:"load_avg_start"`
	LoadEnd        string            `json:"load_avg_end"`
	PortRange      string            `json:"ip_local_port_range"`
	Go             string            `json:"go"`
	Tools          map[string]string `json:"tools"`
	BPFStatsEnable string            `json:"bpf_stats"`
}

func collectEnv() Env {
	e := Env{
		Time:      time.Now().UTC(),
		CPUs:      runtime.NumCPU(),
		LoadStart: loadAvg(),
		PortRange: readTrim("/proc/sys/net/ipv4/ip_local_port_range"),
		Go:        runtime.Version(),
		Tools:     map[string]string{},
		BPFStatsEnable: "BPF_ENABLE_STATS held for the whole bench but the churn's rate measurements: every " +
			"configuration's programs pay the accounting (two clock reads per run) in the storms",
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		e.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	for _, t := range [][]string{{"bpftrace", "--version"}, {"tcpdump", "--version"}, {"nginx", "-v"}, {"wrk", "--version"}} {
		// wrk exits 1 after printing its version; what counts is output.
		out, err := exec.Command(t[0], t[1]).CombinedOutput()
		if first := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]; first != "" && !errors.Is(err, exec.ErrNotFound) {
			e.Tools[t[0]] = first
		}
	}
	return e
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.Join(strings.Fields(string(b)), " ")
}
