package reconcile

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rstwatch/rstwatch/internal/netns"
)

// localRescan bounds how often an unknown address makes LocalAddrs read
// every namespace's addresses again.
const localRescan = 5 * time.Second

// LocalAddrs knows the addresses of every network namespace of this host,
// to tell a reset whose sender is on this host. Has never blocks: an
// unknown address asks a background rescan (Run), at most every
// localRescan, so a namespace made after the last scan is known a little
// later (until then its resets are not marked).
type LocalAddrs struct {
	ix   *netns.Index
	set  atomic.Pointer[map[netip.Addr]struct{}]
	kick chan struct{}
}

// NewLocalAddrs reads every namespace's addresses once.
func NewLocalAddrs(ix *netns.Index) *LocalAddrs {
	l := &LocalAddrs{ix: ix, kick: make(chan struct{}, 1)}
	l.scan()
	return l
}

func (l *LocalAddrs) scan() {
	set := map[netip.Addr]struct{}{}
	for _, ino := range l.ix.Inodes(0) {
		addrs, err := l.ix.LocalAddrs(ino)
		if err != nil {
			continue // gone since it was listed
		}
		for _, a := range addrs {
			set[a] = struct{}{}
		}
	}
	l.set.Store(&set)
}

// Has says whether a is an address of one of this host's namespaces.
func (l *LocalAddrs) Has(a netip.Addr) bool {
	if _, ok := (*l.set.Load())[a.Unmap()]; ok {
		return true
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return false
}

// Run rescans when Has met an unknown address, until ctx is done.
func (l *LocalAddrs) Run(ctx context.Context) {
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		}
		if wait := localRescan - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		l.scan()
		last = time.Now()
	}
}
