package tracer

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/rstwatch/rstwatch/internal/event"
)

// Count is one in-kernel aggregate: how many resets share these labels
// since the programs were loaded.
type Count struct {
	Direction   event.Direction // 0 for the overflow row
	Reason      string
	State       string // TCP state of the socket, "" when there was none (a refused SYN)
	OwnerPID    uint32 // 0 when no owner was known
	OwnerComm   string
	OwnerSource event.OwnerSource
	// OwnerCgroup is the owner's cgroup v2 id when it was learned, 0 when
	// unknown.
	OwnerCgroup uint64
	NetNS       uint32         // network namespace inode of the socket or packet
	ZKEndpoint  netip.AddrPort // the ZooKeeper server endpoint, invalid when not ZooKeeper
	// Overflow is the row that collects resets whose labels did not fit in
	// the kernel map (see Stats.AggFull).
	Overflow bool
	Count    uint64
}

// Counts reads every aggregate. It needs Config.Aggregate.
func (t *Tracer) Counts() ([]Count, error) {
	if !t.cfg.Aggregate {
		return nil, errors.New("tracer: aggregation is off")
	}
	dec := newDecoder(t.reasons, t.clock)
	var (
		k      rstwatchAggKey
		perCPU []uint64 // the kernel counts per CPU
		out    []Count
	)
	it := t.objs.Counts.Iterate()
	for it.Next(&k, &perCPU) {
		var v uint64
		for _, n := range perCPU {
			v += n
		}
		c := Count{Count: v, Overflow: k.Direction == 0}
		if v == 0 && !c.Overflow {
			// Its one count was taken back: a receive that was the
			// kernel's own abort (see Stats.AbortsRetracted).
			continue
		}
		if !c.Overflow {
			c.Direction = event.Direction(k.Direction)
			c.Reason = reasonUnknown
			if k.Reason != 0xffff {
				c.Reason = t.reasons.name(k.Reason)
			}
			c.State = stateName(k.State)
			c.OwnerPID = k.OwnerPid
			c.OwnerComm = dec.comm(k.OwnerComm)
			c.OwnerSource = event.OwnerSource(k.OwnerSource)
			c.OwnerCgroup = k.OwnerCgroup
			c.NetNS = k.Netns
			if k.ZkPort != 0 {
				c.ZKEndpoint = netip.AddrPortFrom(addr(uint16(k.ZkFamily), &k.ZkAddr), k.ZkPort)
			}
		}
		out = append(out, c)
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("tracer: reading aggregates: %w", err)
	}
	return out, nil
}

// ForgetOwner deletes the aggregates of an owner that has exited, after the
// caller has folded their counts elsewhere, so the map does not fill with
// the dead. Counts added between the read and the delete are lost; callers
// do this only for exited processes, which add none.
func (t *Tracer) ForgetOwner(pid uint32) error {
	var (
		k    rstwatchAggKey
		v    []uint64
		dead []rstwatchAggKey
	)
	it := t.objs.Counts.Iterate()
	for it.Next(&k, &v) {
		if k.OwnerPid == pid && k.Direction != 0 {
			dead = append(dead, k)
		}
	}
	for i := range dead {
		if err := t.objs.Counts.Delete(&dead[i]); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("tracer: forgetting owner %d: %w", pid, err)
		}
	}
	return it.Err()
}
