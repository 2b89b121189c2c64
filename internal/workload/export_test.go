package workload

import "time"

// Hooks for the tests in package workload_test, which use workloadtest
// (and so cannot be in this package).

func (r *Resolver) Known(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.cgroups.get(id)
	return ok
}

func (r *Resolver) KnownPod(uid, containerID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.pods.get(uid)
	_, ok2 := r.containers.get(containerID)
	return ok && ok2
}

// StopWatching leaves the resolver with its scans only.
func (r *Resolver) StopWatching() {
	r.Close()
	r.mu.Lock()
	r.w = nil
	r.mu.Unlock()
}

func (r *Resolver) SetClock(now func() time.Time) {
	r.mu.Lock()
	r.now = now
	r.mu.Unlock()
}
