// Package event holds rstwatch's domain model of one TCP reset. It is what
// the tracer produces and what enrichment (owner, ZooKeeper) and the output
// sinks consume; it has no dependency on eBPF so that every consumer can be
// tested without root.
package event

import (
	"net/netip"
	"time"
)

// Direction says whether this host emitted the RST or a local socket got one.
type Direction uint8

const (
	Send    Direction = 1
	Receive Direction = 2
)

func (d Direction) String() string {
	switch d {
	case Send:
		return "send"
	case Receive:
		return "receive"
	}
	return "unknown"
}

// Task is whoever was on the CPU when the kernel emitted the event.
type Task struct {
	PID    uint32 // thread group id
	TID    uint32
	Comm   string // the thread group leader's name
	Thread string // the running thread's own name
	Cgroup uint64 // cgroup v2 id of the task, 0 when unknown
}

// OwnerSource says how the owner of the local socket was learned.
type OwnerSource uint8

const (
	OwnerNone     OwnerSource = iota
	OwnerSocket               // remembered in the kernel by socket pointer
	OwnerTuple                // remembered in the kernel by 4-tuple (socket gone or timewait)
	OwnerListener             // the listening socket's owner (connection not accepted yet)
	OwnerProcfs               // found in /proc by socket inode (no longer produced: see OwnerSeeded)
	// OwnerSeeded: the socket predates rstwatch (or was accepted without
	// accept(), e.g. by io_uring); this process held it when rstwatch read
	// every process's open files in the kernel (at start, then periodically).
	OwnerSeeded
)

func (s OwnerSource) String() string {
	switch s {
	case OwnerSocket:
		return "socket"
	case OwnerTuple:
		return "tuple"
	case OwnerListener:
		return "listener"
	case OwnerProcfs:
		return "procfs"
	case OwnerSeeded:
		return "seeded"
	}
	return "none"
}

// Owner is the process that owns, or last owned, the local socket.
type Owner struct {
	PID    uint32
	TID    uint32 // the thread that made the socket (connect/accept/listen)
	Comm   string // the thread group leader's name
	Alive  bool
	Source OwnerSource
	// Cgroup is the owner's cgroup v2 id, captured in the kernel when the
	// owner was learned (so it survives the owner's exit); 0 when unknown.
	Cgroup uint64
}

// Event is one TCP reset seen by the kernel.
type Event struct {
	Time      time.Time
	Direction Direction
	Local     netip.AddrPort // this host's end (for Send, the RST's source)
	Remote    netip.AddrPort
	State     string // kernel TCP state name without "TCP_", "" when unknown
	Reason    string // kernel sk_rst_reason name, "UNKNOWN" when not reported
	NetNS     uint32 // network namespace inode, 0 when unknown
	Cookie    uint64 // socket cookie, 0 when unknown
	Task      Task
	Owner     *Owner // nil when no local process ever owned the connection

	// Enrichment, filled after decoding; nil when not applicable.
	ZK      *ZK
	Verdict *Verdict
}

// Family returns "ipv4" or "ipv6".
func (e *Event) Family() string {
	if e.Local.Addr().Is4() {
		return "ipv4"
	}
	return "ipv6"
}

// TaskIsOwner reports whether the task on the CPU is the socket's owner.
func (e *Event) TaskIsOwner() bool {
	return e.Owner != nil && e.Owner.PID == e.Task.PID
}

// Connect is a TCP connection the kernel saw being made (connect or accept)
// whose local or remote port is a ZooKeeper client port. ZooKeeper
// enrichment uses it to learn a client's library version while the process
// lives and to refresh a server's session list; it is not a reset and is
// never written to the outputs.
type Connect struct {
	Time     time.Time
	Local    netip.AddrPort // this host's end
	Remote   netip.AddrPort
	NetNS    uint32
	Accepted bool // true: this host accepted it (server side); false: it connected
	PID      uint32
	TID      uint32
	Comm     string // the thread group leader's name
	Cgroup   uint64
}

// ZK is what rstwatch knows of the ZooKeeper connection a reset touched.
type ZK struct {
	Endpoint      netip.AddrPort // the ZooKeeper server's client endpoint
	Role          string         // "client" or "server": which side this host's socket is
	ServerVersion string         // "" when unknown
	Mode          string         // leader/follower/standalone/observer, "" when unknown
	Session       string         // "0x…", "" when unknown
	ClientVersion string         // "" when unknown
}

// Verdict codes.
const (
	VerdictKnownBug    = "ZOOKEEPER-1702"
	VerdictNotKnownBug = "NOT_KNOWN_BUG"
	VerdictUnknown     = "UNKNOWN"
)

// Verdict explains a ZooKeeper reset.
type Verdict struct {
	Code string
	Text string
}
