// Package netns finds each network namespace of this host by its inode
// (what the kernel programs report) and reads its /proc/net files: through
// a process in it (/proc/PID/net/…, which needs no more than reading
// /proc), or, for a namespace that only a bind mount in /run/netns keeps
// (`ip netns add`), by entering it with setns on a thread of its own (which
// needs CAP_SYS_ADMIN).
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ErrNotFound is returned for a namespace that no process and no bind
// mount keeps any more (it is gone) or that was never seen.
var ErrNotFound = errors.New("network namespace not found")

// Index maps namespace inodes to a way into each. Safe for concurrent use.
type Index struct {
	procRoot, runRoot string
	minRescan         time.Duration

	mu      sync.Mutex
	pids    map[uint32]int
	mounts  map[uint32]string
	scanned time.Time
}

// New returns an index over /proc and /run/netns, scanned on first use.
func New() *Index { return NewAt("/proc", "/run/netns") }

// NewAt is New with other roots, for tests.
func NewAt(procRoot, runRoot string) *Index {
	return &Index{procRoot: procRoot, runRoot: runRoot, minRescan: time.Second}
}

// Self returns the inode of this process's network namespace.
func Self() (uint32, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("netns: %w", err)
	}
	return uint32(st.Ino), nil
}

func nsInode(path string) (uint32, bool) {
	var st syscall.Stat_t
	if syscall.Stat(path, &st) != nil {
		return 0, false
	}
	return uint32(st.Ino), true
}

// Scan finds every namespace again now.
func (ix *Index) Scan() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.scanLocked()
}

func (ix *Index) scanLocked() {
	pids := map[uint32]int{}
	mounts := map[uint32]string{}
	ents, _ := os.ReadDir(ix.procRoot)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ino, ok := nsInode(filepath.Join(ix.procRoot, e.Name(), "ns", "net"))
		if !ok {
			continue // exited, or not ours to read
		}
		if old, seen := pids[ino]; !seen || pid < old {
			pids[ino] = pid
		}
	}
	ents, _ = os.ReadDir(ix.runRoot)
	for _, e := range ents {
		p := filepath.Join(ix.runRoot, e.Name())
		if ino, ok := nsInode(p); ok {
			mounts[ino] = p
		}
	}
	ix.pids, ix.mounts, ix.scanned = pids, mounts, time.Now()
}

// ensure scans when never scanned, or when ino is unknown and the last scan
// is older than minRescan.
func (ix *Index) ensure(ino uint32) {
	if ix.pids == nil {
		ix.scanLocked()
		return
	}
	if _, ok := ix.pids[ino]; ok {
		return
	}
	if _, ok := ix.mounts[ino]; ok {
		return
	}
	if time.Since(ix.scanned) >= ix.minRescan {
		ix.scanLocked()
	}
}

// Inodes lists the namespaces found by the last scan (scanning first if
// there was none or it is older than maxAge), in order.
func (ix *Index) Inodes(maxAge time.Duration) []uint32 {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.pids == nil || time.Since(ix.scanned) > maxAge {
		ix.scanLocked()
	}
	var out []uint32
	for ino := range ix.pids {
		out = append(out, ino)
	}
	for ino := range ix.mounts {
		if _, ok := ix.pids[ino]; !ok {
			out = append(out, ino)
		}
	}
	slices.Sort(out)
	return out
}

// ReadFile reads /proc/net/name (snmp, netstat, tcp, tcp6, fib_trie,
// if_inet6) as seen in the namespace ino.
func (ix *Index) ReadFile(ino uint32, name string) ([]byte, error) {
	for attempt := 0; attempt < 2; attempt++ {
		ix.mu.Lock()
		ix.ensure(ino)
		pid, byPID := ix.pids[ino]
		mount := ix.mounts[ino]
		ix.mu.Unlock()
		switch {
		case byPID:
			dir := filepath.Join(ix.procRoot, strconv.Itoa(pid))
			b, err := os.ReadFile(filepath.Join(dir, "net", name))
			// The process may have exited or moved between the scan and
			// the read: trust the file only if it is still there.
			if now, ok := nsInode(filepath.Join(dir, "ns", "net")); err == nil && ok && now == ino {
				return b, nil
			}
			ix.mu.Lock()
			if ix.pids[ino] == pid {
				delete(ix.pids, ino)
				ix.scanned = time.Time{} // rescan on the next try
			}
			ix.mu.Unlock()
		case mount != "":
			var b []byte
			err := In(mount, func() error {
				var err error
				b, err = os.ReadFile("/proc/thread-self/net/" + name)
				return err
			})
			if err == nil {
				if now, ok := nsInode(mount); ok && now == ino {
					return b, nil
				}
			}
			if attempt == 1 {
				return nil, fmt.Errorf("netns %d: %w", ino, err)
			}
			ix.mu.Lock()
			ix.scanned = time.Time{}
			ix.mu.Unlock()
		default:
			return nil, fmt.Errorf("netns %d: %w", ino, ErrNotFound)
		}
	}
	return nil, fmt.Errorf("netns %d: %w", ino, ErrNotFound)
}

// In runs f on an OS thread that has entered the network namespace at
// path. The thread is given back only if it could return to this process's
// namespace; otherwise it ends with its goroutine, so that no other code
// ever runs in the wrong namespace. It needs CAP_SYS_ADMIN.
func In(path string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: opening this thread's namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: %w", err)
			return
		}
		err = unix.Setns(target, unix.CLONE_NEWNET)
		unix.Close(target)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns: entering %s: %w", path, err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it exits with this goroutine.
			errc <- fmt.Errorf("netns: returning from %s: %w", path, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
