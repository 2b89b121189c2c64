package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/metrics"
	"github.com/rstwatch/rstwatch/internal/pipeline"
	"github.com/rstwatch/rstwatch/internal/workload"
	"github.com/rstwatch/rstwatch/tracer"
)

// workloadFlags name the owners' workloads (systemd unit, container,
// Kubernetes pod) and select resets by them.
type workloadFlags struct {
	pods, units, containers []string
	cgroupRoot              string
	kubeletLogs             string
}

func (w *workloadFlags) register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&w.pods, "pod", nil, "only resets of the Kubernetes pod `NAMESPACE/NAME`: its processes own the socket or were on the CPU (repeatable)")
	fs.StringSliceVar(&w.units, "unit", nil, "only resets of the systemd `unit` (zookeeper or zookeeper.service; repeatable)")
	fs.StringSliceVar(&w.containers, "container", nil, "only resets of the container with this `name` in its pod, or id (12 or more hex digits; repeatable)")
	fs.StringVar(&w.cgroupRoot, "cgroup-root", "", "cgroup v2 `directory` cgroups are named from (default: the v2 mount in /proc/self/mountinfo; in a container, the host's /sys/fs/cgroup mounted in)")
	fs.StringVar(&w.kubeletLogs, "kubelet-logs", "/var/log", "`directory` with the kubelet's pods/ and containers/ log trees, which name pods and containers")
}

// registerWorkloadLimits adds serve's caps on the workload labels.
func registerWorkloadLimits(fs *pflag.FlagSet, l *metrics.Limits) {
	fs.IntVar(&l.Namespaces, "max-namespaces", metrics.DefaultNamespaces, "distinct namespace label values; more are folded into \"other\"")
	fs.IntVar(&l.Pods, "max-pods", metrics.DefaultPods, "distinct pod label values; more are folded into \"other\"")
	fs.IntVar(&l.Containers, "max-containers", metrics.DefaultContainers, "distinct container label values; more are folded into \"other\"")
	fs.IntVar(&l.Units, "max-units", metrics.DefaultUnits, "distinct unit label values; more are folded into \"other\"")
}

// workloadSetup is what trace and serve need from the flags.
type workloadSetup struct {
	resolver *workload.Resolver // nil where cgroups cannot be named
	sel      workload.Selector
	// ids are the cgroups the selector matched at start.
	ids []uint64
}

// setup starts the resolver. A host without cgroup v2 runs without names
// (one warning), unless a flag needs them.
// check finds usage errors in the workload flags before anything is
// loaded, discovered or probed, and returns the selector they name.
func (w *workloadFlags) check() (workload.Selector, error) {
	var sel workload.Selector
	for _, p := range w.pods {
		ref, ok := workload.ParsePodRef(p)
		if !ok {
			return sel, usageError("--pod %s: want NAMESPACE/NAME, such as shop/checkout-7d9c", quoteIfOdd(p))
		}
		sel.Pods = append(sel.Pods, ref)
	}
	for _, u := range w.units {
		if u == "" {
			return sel, usageError("--unit: empty unit name; want a systemd unit such as zookeeper.service")
		}
		sel.Units = append(sel.Units, u)
	}
	for _, c := range w.containers {
		if c == "" {
			return sel, usageError("--container: empty; want a container name or 12 or more hex digits of its id")
		}
		sel.Containers = append(sel.Containers, c)
	}
	return sel, nil
}

func (w *workloadFlags) setup(log *slog.Logger) (*workloadSetup, error) {
	sel, err := w.check()
	if err != nil {
		return nil, err
	}
	s := &workloadSetup{sel: sel}
	r, err := workload.New(workload.Options{CgroupRoot: w.cgroupRoot, KubeletLogs: w.kubeletLogs, Log: log})
	switch {
	case err != nil && w.cgroupRoot != "":
		return nil, usageError("--cgroup-root %s: %v", quoteIfOdd(w.cgroupRoot), err)
	case err != nil && !s.sel.Empty():
		return nil, &exitError{1, fmt.Errorf("--pod, --unit and --container need cgroup v2: %w", err)}
	case err != nil:
		log.Warn("owners' units, containers and pods will not be named", "error", err)
		return s, nil
	}
	s.resolver = r
	if !s.sel.Empty() {
		s.ids = r.Matching(s.sel)
		if len(s.ids) == 0 {
			log.Warn("no cgroup on this node matches the --pod/--unit/--container filter now; its resets are shown once one does")
		}
	}
	return s, nil
}

func (s *workloadSetup) close() {
	if s.resolver != nil {
		s.resolver.Close()
	}
}

// enricher is nil where nothing can be named.
func (s *workloadSetup) enricher() pipeline.Enricher {
	if s.resolver == nil {
		return nil
	}
	return s.resolver
}

// keep applies the filter in user space, after enrichment: a reset is kept
// when its owner's or its task's workload is selected. Nil without one.
func (s *workloadSetup) keep() func(*event.Event) bool {
	if s.sel.Empty() {
		return nil
	}
	return func(e *event.Event) bool {
		return e.Owner != nil && s.sel.Match(e.Owner.Workload) || s.sel.Match(e.Task.Workload)
	}
}

// ofCount names the workload of a kernel aggregate's owner, for serve's
// labels, from the owner's cgroup id the kernel captured when it learned
// the owner (so an exited owner is still named).
func (s *workloadSetup) ofCount(c *tracer.Count) *event.Workload {
	if s.resolver == nil || c.OwnerPID == 0 {
		return nil
	}
	return s.resolver.Owner(c.OwnerCgroup, c.OwnerPID, c.OwnerComm, true)
}

// filter hands the selected cgroups to the kernel's filter (trace and
// serve alike), so that other workloads' resets cost no record and no
// count. Nil-safe: nothing to do without a selector.
func (s *workloadSetup) filter(cfg *tracer.Config) {
	if s.sel.Empty() {
		return
	}
	cfg.FilterCgroups = true
	cfg.Cgroups = s.ids
}

// follow adds cgroups to the kernel's filter as the workloads they belong
// to appear (a container restarted, a unit started after the trace), until
// ctx ends. A reset in the moment between a cgroup's creation and the
// watcher learning it is not seen.
func (s *workloadSetup) follow(ctx context.Context, t *tracer.Tracer, log *slog.Logger) {
	if s.sel.Empty() || s.resolver == nil {
		return
	}
	added := map[uint64]bool{}
	for _, id := range s.ids {
		added[id] = true
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.resolver.Changed():
			}
			var news []uint64
			for _, id := range s.resolver.MatchingKnown(s.sel) {
				if !added[id] {
					news = append(news, id)
				}
			}
			if len(news) == 0 {
				continue
			}
			if err := t.AddCgroups(news...); err != nil {
				log.Warn("a workload's new cgroups cannot be added to the kernel's filter: their resets are not seen", "error", err)
				continue
			}
			for _, id := range news {
				added[id] = true
			}
		}
	}()
}
