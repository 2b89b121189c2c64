package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// TestCardinalityStaysBounded: thousands of ports and hundreds of process
// names must not make more series than the caps allow.
func TestCardinalityStaysBounded(t *testing.T) {
	const (
		maxComms  = 20
		maxSeries = 60
		names     = 200
		perName   = 10 // distinct ports per name: 2000 in all
	)
	// --pid: only this process's resets count (it owns or sends each of
	// the storm's), so other processes on a busy host add no series.
	sp := startServe(t, "--max-owner-comms", strconv.Itoa(maxComms), "--max-series", strconv.Itoa(maxSeries),
		"--pid", strconv.Itoa(os.Getpid()))
	for i := range names {
		setComm(t, fmt.Sprintf("storm-%03d", i))
		for j := range perName {
			// Ports nobody listens on in a range the kernel does not hand
			// out as ephemeral; an open one just makes no reset.
			_ = refuse(20000 + i*perName + j)
		}
	}
	body := sp.metrics(t)
	resets := series(body, "rstwatch_resets_total")
	comms := map[string]bool{}
	commRe := regexp.MustCompile(`owner_comm="([^"]*)"`)
	for _, l := range resets {
		if m := commRe.FindStringSubmatch(l); m != nil {
			comms[m[1]] = true
		}
	}
	delete(comms, "other")
	delete(comms, "unknown")
	if len(comms) > maxComms {
		t.Errorf("%d owner_comm values, cap %d: %v", len(comms), maxComms, comms)
	}
	// Past the series cap only direction × reason × verdict combinations
	// with owner_comm "other" can be added; a storm of one kind adds a few.
	if len(resets) > maxSeries+10 {
		t.Errorf("%d rstwatch_resets_total series, cap %d:\n%s", len(resets), maxSeries, strings.Join(resets, "\n"))
	}
	over := series(body, `rstwatch_label_overflow_total{label="owner_comm"}`)
	if len(over) != 1 || strings.HasSuffix(over[0], " 0") {
		t.Errorf("owner_comm overflow not counted: %v", over)
	}
	var storm float64
	for _, l := range resets {
		if strings.Contains(l, `direction="receive"`) && (strings.Contains(l, `owner_comm="storm-`) || strings.Contains(l, `owner_comm="other"`)) {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			storm += v
		}
	}
	if storm < names*perName*0.99 {
		t.Errorf("received resets of the storm: %v, want about %d (folding must not lose counts)", storm, names*perName)
	}
	t.Logf("%d series, %d named comms, storm resets %v, %s", len(resets), len(comms), storm, over)
	sp.stop(t, 5*time.Second)
}

// bpfObjects returns the ids of the BPF programs and links that pid holds,
// from its descriptors' fdinfo (bpftool shows holders only when built
// with skeletons, which Debian's is not).
func bpfObjects(t *testing.T, pid int) (progs, links []int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(dir + "/" + fd.Name())
		if err != nil {
			continue
		}
		key := map[string]string{"anon_inode:bpf-prog": "prog_id:", "anon_inode:bpf_link": "link_id:"}[target]
		if key == "" {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, key); ok {
				id, _ := strconv.Atoi(strings.TrimSpace(v))
				if key == "prog_id:" {
					progs = append(progs, id)
				} else {
					links = append(links, id)
				}
				break
			}
		}
	}
	return progs, links
}

// TestSIGTERMDuringStorm: serve exits promptly under a reset storm and
// leaves no program or link behind.
func TestSIGTERMDuringStorm(t *testing.T) {
	events := t.TempDir() + "/events.jsonl"
	sp := startServe(t, "--events-file", events)
	pid := sp.cmd.Process.Pid
	progs, links := bpfObjects(t, pid)
	if len(progs) == 0 || len(links) == 0 {
		t.Fatalf("serve (pid %d) holds %d programs and %d links; cannot check the cleanup", pid, len(progs), len(links))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	port := closedPort(t)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_ = refuse(port)
			}
		}()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	time.Sleep(500 * time.Millisecond)
	took := sp.stop(t, 5*time.Second)
	cancel()
	wg.Wait()
	if took > 2*time.Second {
		t.Errorf("serve took %v to exit after SIGTERM, want under 2 s", took)
	}
	if !strings.Contains(sp.stderr.String(), "stopping") {
		t.Errorf("no clean stop in the log:\n%s", sp.stderr)
	}
	if b, err := os.ReadFile(events); err != nil || !strings.Contains(string(b), `"type":"reset"`) {
		t.Errorf("events file has no reset (%v): %.300s", err, b)
	}
	left := 0
	for _, id := range progs {
		if p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id)); err == nil {
			p.Close()
			t.Errorf("program %d still loaded after serve exited", id)
			left++
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("program %d: %v", id, err)
		}
	}
	for _, id := range links {
		if l, err := link.NewFromID(link.ID(id)); err == nil {
			l.Close()
			t.Errorf("link %d still attached after serve exited", id)
			left++
		} else if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("link %d: %v", id, err)
		}
	}
	t.Logf("exited %v after SIGTERM; %d programs and %d links released, %d left", took, len(progs), len(links), left)
}
