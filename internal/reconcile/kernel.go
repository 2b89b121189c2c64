package reconcile

import (
	"fmt"
	"time"

	"github.com/rstwatch/rstwatch/internal/netns"
)

// Kernel reads the counters of any namespace of this host.
type Kernel struct {
	ix *netns.Index
}

// NewKernel reads namespaces through ix.
func NewKernel(ix *netns.Index) *Kernel { return &Kernel{ix: ix} }

// Read returns the counters of the namespace with inode ino.
func (k *Kernel) Read(ino uint32) (Counters, error) {
	snmp, err := k.ix.ReadFile(ino, "snmp")
	if err != nil {
		return Counters{}, err
	}
	netstat, err := k.ix.ReadFile(ino, "netstat")
	if err != nil {
		return Counters{}, err
	}
	c, err := Parse(snmp, netstat)
	if err != nil {
		return c, fmt.Errorf("netns %d: %w", ino, err)
	}
	return c, nil
}

// ReadAll returns the counters of every namespace found (listed again when
// the last scan is older than maxAge). Namespaces that vanish while being
// read are left out.
func (k *Kernel) ReadAll(maxAge time.Duration) map[uint32]Counters {
	out := map[uint32]Counters{}
	for _, ino := range k.ix.Inodes(maxAge) {
		if c, err := k.Read(ino); err == nil {
			out[ino] = c
		}
	}
	return out
}
