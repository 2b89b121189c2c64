package workload

import (
	"encoding/binary"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// What a watched directory is.
type watchKind uint8

const (
	watchCgroup     watchKind = iota + 1 // a cgroup directory: new children are cgroups
	watchPods                            // /var/log/pods
	watchContainers                      // /var/log/containers
)

type watched struct {
	kind watchKind
	dir  string // on this machine
	rel  string // cgroups: path from the root
	id   uint64 // cgroups: its id
}

// watcher learns of cgroups and pods as they are made, through inotify, so
// that one that lives and dies between two resets is still named: a scan at
// the time of the reset would no longer find it. Scans remain the ground
// truth; the watcher only adds what they would have missed.
type watcher struct {
	f    *os.File
	fd   int
	wds  map[int32]watched // guarded by the Resolver's mutex
	full bool              // the kernel refused a watch (fs.inotify.max_user_watches)
}

func newWatcher() (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	// Non-blocking: the runtime's poller reads it, and Close unblocks Read.
	return &watcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, wds: map[int32]watched{}}, nil
}

// add watches dir; watching a directory again only refreshes its entry.
func (w *watcher) add(wt watched) error {
	if w == nil || w.full {
		return nil
	}
	mask := uint32(unix.IN_CREATE | unix.IN_ONLYDIR | unix.IN_DONT_FOLLOW)
	if wt.kind != watchCgroup {
		mask |= unix.IN_DELETE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM
	}
	wd, err := unix.InotifyAddWatch(w.fd, wt.dir, mask)
	if errors.Is(err, unix.ENOSPC) {
		w.full = true
		return err
	}
	if err != nil {
		return err
	}
	w.wds[int32(wd)] = wt
	return nil
}

// inotifyEvent is one decoded event.
type inotifyEvent struct {
	wd   int32
	mask uint32
	name string
}

// decode splits a read of the inotify descriptor into events.
func decode(buf []byte, f func(inotifyEvent)) {
	const hdr = unix.SizeofInotifyEvent
	for len(buf) >= hdr {
		wd := int32(binary.NativeEndian.Uint32(buf[0:]))
		mask := binary.NativeEndian.Uint32(buf[4:])
		n := int(binary.NativeEndian.Uint32(buf[12:])) // after the cookie
		if n > len(buf)-hdr {
			return
		}
		name := buf[hdr : hdr+n]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		f(inotifyEvent{wd: wd, mask: mask, name: string(name)})
		buf = buf[hdr+n:]
	}
}
