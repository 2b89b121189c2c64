package tracer

import (
	"fmt"
	"io"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// DefaultSeedInterval is how often the open files of every process are
// read again for sockets without a known owner.
const DefaultSeedInterval = 30 * time.Second

// seedLost is what is not known when the iterator cannot run.
const seedLost = "the owners of sockets made before rstwatch started (or accepted through io_uring) are not known"

// loadSeeder loads the iterator that names the owners of existing sockets.
// It loads on its own, so that a kernel without BPF iterators or
// bpf_sock_from_file (before 5.11) still traces.
func (t *Tracer) loadSeeder(spec *ebpf.CollectionSpec, kspec *btf.Spec, maps map[string]*ebpf.Map) {
	prog, err := t.loadExtra(spec, kspec, maps, rstwatchProgRstwatchSeed)
	if err != nil {
		t.degraded = append(t.degraded, fmt.Sprintf("the socket iterator did not load (%v): %s", err, seedLost))
		return
	}
	t.seeder = prog
}

// Seed reads the open files of every process once and remembers, for each
// TCP socket whose owner the kernel does not know yet, the first process
// (lowest pid) that holds it. Owners learned by the programs are never
// replaced. Open seeds once after attaching; the tracer then seeds again
// every Config.SeedInterval, which also names the owners of sockets
// accepted without accept() (io_uring).
func (t *Tracer) Seed() error {
	if t.seeder == nil {
		return fmt.Errorf("tracer: the socket iterator is not loaded on this kernel")
	}
	l, err := link.AttachIter(link.IterOptions{Program: t.seeder})
	if err != nil {
		return fmt.Errorf("tracer: attaching the socket iterator: %w", err)
	}
	defer l.Close()
	rd, err := l.Open()
	if err != nil {
		return fmt.Errorf("tracer: starting the socket iterator: %w", err)
	}
	defer rd.Close()
	// The program writes nothing: reading to the end runs it over every
	// file of every task.
	if _, err := io.Copy(io.Discard, rd); err != nil {
		return fmt.Errorf("tracer: running the socket iterator: %w", err)
	}
	return nil
}

// seedLoop seeds again every interval until stop is closed.
func (t *Tracer) seedLoop(interval time.Duration, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if err := t.Seed(); err != nil {
				t.log.Warn("naming the owners of existing sockets failed", "error", err)
			}
		}
	}
}
