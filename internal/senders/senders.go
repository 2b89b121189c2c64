// Package senders names the processes behind a reset that the TCP stack did
// not make, seen on the wire by the packet-level view (--all-senders): the
// process holding the raw or packet socket that sent it, and the owner of
// the local connection whose 4-tuple it carries (whose connection it hit).
// Both are looked up in /proc when the reset is reported, so they are what
// /proc said then: a socket closed in between is not found, and its field
// stays empty rather than naming anyone else.
package senders

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/netns"
	"github.com/rstwatch/rstwatch/internal/procfs"
)

// Enricher fills Sender.PID/Comm and the Owner of sends seen on the wire.
// Safe for concurrent use (serve calls it from the reader goroutine).
type Enricher struct {
	ix       *netns.Index
	procRoot string

	mu      sync.Mutex
	procs   *procfs.Sockets // built on first use: a full /proc scan
	lookups rate            // of /proc/net/tcp scans, which grow with the sockets
}

// maxLookups bounds the scans of a namespace's socket table per second:
// in a storm of rejects (a port scan against a firewall) the rest go
// without the owner of a matching socket.
const maxLookups = 20

// rate allows n events per second.
type rate struct {
	second time.Time
	n      int
}

func (r *rate) allow(now time.Time, max int) bool {
	if s := now.Truncate(time.Second); !s.Equal(r.second) {
		r.second, r.n = s, 0
	}
	if r.n >= max {
		return false
	}
	r.n++
	return true
}

// New looks processes up under procRoot ("/proc") and sockets through ix.
func New(ix *netns.Index, procRoot string) *Enricher {
	return &Enricher{ix: ix, procRoot: procRoot}
}

// Enrich names the sender's process and the connection's owner of a reset
// the packet-level view saw. Other events are left as they are; a received
// reset tagged with the same Sender shares what was found for its send.
func (s *Enricher) Enrich(_ context.Context, e *event.Event) {
	if e.Direction != event.Send || e.Sender == nil || e.Sender.Inferred {
		return
	}
	if e.Sender.Socket != 0 && e.Sender.PID == 0 {
		if pid, ok := s.holder(e.Task.PID, e.Sender.Socket); ok {
			e.Sender.PID, e.Sender.Comm = pid, s.comm(pid)
		}
	}
	if e.Owner == nil && e.NetNS != 0 && s.mayLookUp() {
		if ino, ok := s.socketOf(e.NetNS, e.Local, e.Remote); ok {
			if o, ok := s.lookup(ino); ok {
				e.Owner = &event.Owner{PID: o.PID, Comm: o.Comm, Alive: true, Source: event.OwnerProcfs}
			}
		}
	}
}

func (s *Enricher) mayLookUp() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups.allow(time.Now(), maxLookups)
}

// holder finds the process holding the socket with this inode: the task
// that was on the CPU when the packet was queued, if it holds it (a raw
// socket's send runs in the sender's context), else any process.
func (s *Enricher) holder(task uint32, inode uint64) (uint32, bool) {
	if task != 0 && procfs.Holds(s.procRoot, task, inode) {
		return task, true
	}
	o, ok := s.lookup(inode)
	return o.PID, ok
}

func (s *Enricher) lookup(inode uint64) (procfs.Owner, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.procs == nil {
		s.procs = procfs.NewSockets(s.procRoot)
	}
	return s.procs.Lookup(inode)
}

// comm is the thread group leader's name.
func (s *Enricher) comm(pid uint32) string {
	b, err := os.ReadFile(filepath.Join(s.procRoot, strconv.FormatUint(uint64(pid), 10), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// socketOf finds, in namespace ns, the TCP socket whose local end is local
// and remote end remote, in /proc/net/tcp and tcp6; its inode, if a process
// holds it (timewait sockets have none).
func (s *Enricher) socketOf(ns uint32, local, remote netip.AddrPort) (uint64, bool) {
	files := []string{"tcp6"}
	if local.Addr().Is4() {
		files = []string{"tcp", "tcp6"} // an IPv4 connection may be on an IPv6 socket
	}
	for _, f := range files {
		b, err := s.ix.ReadFile(ns, f)
		if err != nil {
			continue
		}
		if ino, ok := findSocket(b, local, remote); ok {
			return ino, true
		}
	}
	return 0, false
}

// findSocket finds, in a /proc/net/tcp or tcp6 table, the socket whose
// local end is local and remote end remote; its inode, if a process holds
// it (timewait sockets have none).
func findSocket(table []byte, local, remote netip.AddrPort) (uint64, bool) {
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	for _, e := range procfs.ParseTCP(table) {
		if e.Local == local && e.Remote == remote {
			return e.Inode, e.Inode != 0
		}
	}
	return 0, false
}
