// Package procfs reads sockets from /proc: the TCP tables of a network
// namespace (/proc/net/tcp{,6}) and which process holds a socket, by its
// inode (/proc/PID/fd). The kernel programs name the owners of resets; this
// is for what user space must look up afterwards (the listener of a port,
// the process behind a raw socket, the connection a reset hit).
package procfs

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Owner is a process holding a socket.
type Owner struct {
	PID  uint32
	Comm string
}

// Sockets maps socket inodes to the processes holding them. It is not safe
// for concurrent use.
type Sockets struct {
	root     string
	byInode  map[uint64]Owner
	scanned  time.Time
	minDelay time.Duration
	now      func() time.Time
}

// NewSockets scans root (normally "/proc") once, so that sockets which exist
// now can be named after they are closed.
func NewSockets(root string) *Sockets {
	s := &Sockets{root: root, minDelay: time.Second, now: time.Now}
	s.scan()
	return s
}

// Lookup returns the owner of the socket with this inode. A miss rescans
// /proc, at most once per second, since a full scan reads every fd of
// every process.
func (s *Sockets) Lookup(inode uint64) (Owner, bool) {
	if o, ok := s.byInode[inode]; ok {
		return o, true
	}
	if s.now().Sub(s.scanned) < s.minDelay {
		return Owner{}, false
	}
	s.scan()
	o, ok := s.byInode[inode]
	return o, ok
}

func (s *Sockets) scan() {
	s.scanned = s.now()
	byInode := make(map[uint64]Owner, len(s.byInode))
	comms := map[uint32]string{}
	WalkSockets(s.root, func(pid uint32, inode uint64) bool {
		if _, seen := byInode[inode]; seen {
			return true // shared after fork: the first (lowest) pid holds it too
		}
		comm, ok := comms[pid]
		if !ok {
			comm = Comm(s.root, pid)
			comms[pid] = comm
		}
		byInode[inode] = Owner{PID: pid, Comm: comm}
		return true
	})
	s.byInode = byInode
}

// WalkSockets calls fn for every socket file descriptor of every process
// under root ("/proc"), lowest pid first; fn returns false to go on to the
// next process. Processes whose descriptors cannot be read (exited, kernel
// threads, other users' without CAP_SYS_PTRACE) are passed over.
func WalkSockets(root string, fn func(pid uint32, inode uint64) bool) {
	ents, _ := os.ReadDir(root)
	var pids []uint32
	for _, e := range ents {
		if n, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && n > 0 {
			pids = append(pids, uint32(n))
		}
	}
	slices.Sort(pids)
	for _, pid := range pids {
		eachSocket(root, pid, func(inode uint64) bool { return fn(pid, inode) })
	}
}

// eachSocket calls fn with the inode of every socket process pid (under
// root) has open, until fn returns false, and reports whether it did.
func eachSocket(root string, pid uint32, fn func(inode uint64) bool) (stopped bool) {
	fdDir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10), "fd")
	fds, _ := os.ReadDir(fdDir)
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := socketInode(target); ok && !fn(inode) {
			return true
		}
	}
	return false
}

// Holds reports whether process pid (under root) has the socket inode open.
func Holds(root string, pid uint32, inode uint64) bool {
	return eachSocket(root, pid, func(n uint64) bool { return n != inode })
}

// socketInode parses an fd link target such as "socket:[12345]".
func socketInode(target string) (uint64, bool) {
	rest, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		return 0, false
	}
	rest, ok = strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

// Comm is the process's name (/proc/PID/comm is the thread group leader's).
func Comm(root string, pid uint32) string {
	b, err := os.ReadFile(filepath.Join(root, strconv.FormatUint(uint64(pid), 10), "comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}
