// Package procfs finds the owner of a socket that predates rstwatch, by its
// inode, in /proc/*/fd. The kernel programs can only learn owners of sockets
// made while they run; long-lived connections (a ZooKeeper session, say)
// were usually made before.
package procfs

import (
	"os"
	"path/filepath"
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
	procs, _ := os.ReadDir(s.root)
	for _, p := range procs {
		pid, err := strconv.ParseUint(p.Name(), 10, 32)
		if err != nil {
			continue
		}
		fdDir := filepath.Join(s.root, p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // exited, or a kernel thread
		}
		var comm string
		for _, fd := range fds {
			target, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil {
				continue
			}
			inode, ok := socketInode(target)
			if !ok {
				continue
			}
			if _, seen := byInode[inode]; seen {
				continue // shared after fork: the first (lowest) pid holds it too
			}
			if comm == "" {
				comm = Comm(s.root, uint32(pid))
			}
			byInode[inode] = Owner{PID: uint32(pid), Comm: comm}
		}
	}
	s.byInode = byInode
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
