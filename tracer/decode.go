package tracer

import (
	"bytes"
	"errors"
	"net/netip"
	"unsafe"

	"github.com/rstwatch/rstwatch/internal/event"
)

const (
	afInet  = 2
	afInet6 = 10
)

var (
	errShortRecord   = errors.New("ring buffer record shorter than its kind's struct")
	errUnknownRecord = errors.New("ring buffer record of unknown kind")
)

// decoder turns raw records into events without reflection and, in steady
// state, without allocating: comm strings are interned and the Owner a
// decoded event points at is reused, so an event is only valid until the
// next decode.
type decoder struct {
	reasons reasonNames
	clock   clockOffset
	comms   map[[16]int8]string
	owner   event.Owner
	flags   uint16 // the last reset record's (enum event_flag)
	connect event.Connect
}

func newDecoder(reasons reasonNames, clock clockOffset) *decoder {
	return &decoder{reasons: reasons, clock: clock, comms: make(map[[16]int8]string)}
}

// comm interns a NUL-padded kernel comm. The table is bounded by clearing
// it when it grows past what any real host runs.
func (d *decoder) comm(c [16]int8) string {
	if s, ok := d.comms[c]; ok {
		return s
	}
	if len(d.comms) > 4096 {
		clear(d.comms)
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(&c[0])), len(c))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	s := string(b)
	d.comms[c] = s
	return s
}

func addr(family uint16, raw *[16]uint8) netip.Addr {
	if family == afInet {
		return netip.AddrFrom4([4]byte(raw[:4]))
	}
	// IPv4 on an IPv6 socket is IPv4 on the wire: show it as such.
	return netip.AddrFrom16(*raw).Unmap()
}

// kind is what a raw record holds.
func kind(raw []byte) rstwatchRecordKind {
	if len(raw) == 0 {
		return 0
	}
	return rstwatchRecordKind(raw[0])
}

func (d *decoder) decode(raw []byte, ev *event.Event) error {
	if len(raw) < int(unsafe.Sizeof(rstwatchEvent{})) {
		return errShortRecord
	}
	if kind(raw) != rstwatchRecordKindRECORD_RESET {
		return errUnknownRecord
	}
	r := (*rstwatchEvent)(unsafe.Pointer(&raw[0]))
	d.flags = r.Flags

	*ev = event.Event{
		Time:      d.clock.wall(r.TimeNs),
		Direction: event.Direction(r.Direction),
		Local:     netip.AddrPortFrom(addr(r.Family, &r.Laddr), r.Lport),
		Remote:    netip.AddrPortFrom(addr(r.Family, &r.Raddr), r.Rport),
		State:     stateName(r.State),
		Reason:    reasonUnknown,
		NetNS:     r.Netns,
		Cookie:    r.Cookie,
		TSOption:  event.TSOption(r.TsOption),
		Task: event.Task{
			PID:    r.TaskPid,
			TID:    r.TaskTid,
			Comm:   d.comm(r.TaskComm),
			Thread: d.comm(r.TaskThread),
			Cgroup: r.TaskCgroup,
		},
	}
	if r.Reason != 0xffff {
		ev.Reason = d.reasons.name(r.Reason)
	}
	if r.OwnerSource != 0 {
		d.owner = event.Owner{
			PID:    r.OwnerPid,
			TID:    r.OwnerTid,
			Comm:   d.comm(r.OwnerComm),
			Alive:  r.OwnerAlive != 0,
			Source: event.OwnerSource(r.OwnerSource),
			Cgroup: r.OwnerCgroup,
		}
		ev.Owner = &d.owner
	}
	return nil
}

// decodeConnect decodes a ZooKeeper connect record. The result is reused
// by the next call.
func (d *decoder) decodeConnect(raw []byte) (*event.Connect, error) {
	if len(raw) < int(unsafe.Sizeof(rstwatchConnectEvent{})) {
		return nil, errShortRecord
	}
	if kind(raw) != rstwatchRecordKindRECORD_CONNECT {
		return nil, errUnknownRecord
	}
	r := (*rstwatchConnectEvent)(unsafe.Pointer(&raw[0]))
	d.connect = event.Connect{
		Time:     d.clock.wall(r.TimeNs),
		Local:    netip.AddrPortFrom(addr(r.Family, &r.Laddr), r.Lport),
		Remote:   netip.AddrPortFrom(addr(r.Family, &r.Raddr), r.Rport),
		NetNS:    r.Netns,
		Accepted: r.Accepted != 0,
		PID:      r.Pid,
		TID:      r.Tid,
		Comm:     d.comm(r.Comm),
		Cgroup:   r.Cgroup,
	}
	return &d.connect, nil
}
