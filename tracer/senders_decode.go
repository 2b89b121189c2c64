package tracer

import (
	"errors"
	"net/netip"
	"unsafe"

	"github.com/rstwatch/rstwatch/internal/event"
)

var errShortSenderRecord = errors.New("ring buffer record shorter than struct sender_event")

// senderDecoder turns packet-level records into events. Such resets are
// rare, so each event and its Sender are newly allocated: they may be kept
// (a received reset is tagged with the same Sender later).
type senderDecoder struct {
	names  *decoder // comm interning and clock
	syms   *symbolizer
	frames []string
	debug  func(msg string, args ...any)
}

func newSenderDecoder(clock clockOffset, syms *symbolizer, debug func(string, ...any)) *senderDecoder {
	return &senderDecoder{names: newDecoder(nil, clock), syms: syms, debug: debug}
}

// decode returns nil (and no error) for a reset the kernel stack shows the
// TCP stack made.
func (d *senderDecoder) decode(raw []byte) (*event.Event, error) {
	if len(raw) < int(unsafe.Sizeof(sendersSenderEvent{})) {
		return nil, errShortSenderRecord
	}
	r := (*sendersSenderEvent)(unsafe.Pointer(&raw[0]))

	s := &event.Sender{
		NetNS:  r.Netns,
		Device: d.names.comm(r.Ifname),
		Socket: r.SkInode,
	}
	switch sendersSenderSock(r.Sock) {
	case sendersSenderSockSENDER_SOCK_RAW:
		s.Class, s.Detail = event.SenderRawSocket, "raw IP socket"
	case sendersSenderSockSENDER_SOCK_PACKET:
		s.Class, s.Detail = event.SenderRawSocket, "packet socket"
	default:
		n := min(int(r.StackBytes)/8, len(r.Stack))
		d.frames = d.syms.names(d.frames, r.Stack[:n])
		if fromTCPStack(d.frames) {
			return nil, nil // the TCP stack's after all: not a sender of interest
		}
		s.Class, s.Detail, s.Hook = classifyNoSocket(d.frames)
		if s.Class == event.SenderUnknown && d.debug != nil {
			d.debug("a reset without a socket made by neither the TCP stack nor netfilter", "stack", d.frames)
		}
	}
	if r.TaskHolds != 0 && s.Class == event.SenderRawSocket {
		// The kernel saw the sending socket among the task's open files.
		s.PID, s.Comm = r.TaskPid, d.names.comm(r.TaskComm)
	}
	return &event.Event{
		Time:      d.names.clock.wall(r.TimeNs),
		Direction: event.Send,
		Local:     netip.AddrPortFrom(addr(r.Family, &r.Saddr), r.Sport),
		Remote:    netip.AddrPortFrom(addr(r.Family, &r.Daddr), r.Dport),
		Reason:    reasonUnknown,
		NetNS:     r.Netns,
		Task: event.Task{
			PID:    r.TaskPid,
			TID:    r.TaskTid,
			Comm:   d.names.comm(r.TaskComm),
			Thread: d.names.comm(r.TaskThread),
		},
		Sender: s,
	}, nil
}
