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
	// Workload names the task's cgroup (unit, container, pod); filled by
	// enrichment only where it differs from the owner's, nil otherwise.
	Workload *Workload
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
	// Workload names the owner's cgroup (unit, container, pod); filled by
	// enrichment, nil when not even the cgroup id is known.
	Workload *Workload
}

// Workload is what an operator knows a cgroup by. Enrichment
// (internal/workload) fills it from the cgroup v2 id; every field is read
// from the node (the cgroup tree, the kubelet's pod directories), "" or nil
// when unknown. Shared between events: never modified once made.
type Workload struct {
	Cgroup uint64 // cgroup v2 id (the inode of its directory)
	Path   string // path from the cgroup v2 root, "/system.slice/x.service"; "" when not found
	// Unit is the systemd unit (service or scope) the cgroup belongs to,
	// UserUnit the unit of a user's own manager inside user@UID.service.
	Unit, UserUnit string
	Container      *Container // nil when the cgroup is not a container's
	Pod            *Pod       // nil unless the node names the pod (never guessed)
}

// Container is a container's cgroup.
type Container struct {
	ID      string // the runtime's full id, as in the cgroup name
	Runtime string // containerd, cri-o, docker, podman; "" when the path does not say
	Name    string // the Kubernetes container name, "" when unknown
}

// Pod is a Kubernetes pod, as the kubelet names it on the node.
type Pod struct {
	Namespace, Name string
	UID             string
	Container       string // the container's name in the pod, "" when unknown
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
	// Sender is set when the TCP stack did not make this reset: on a sent
	// reset seen on the wire by the packet-level view (--all-senders), and
	// on a received reset whose sender it saw, or that no local TCP send
	// explains (Sender.Inferred). Nil for the TCP stack's own resets.
	Sender *Sender
	// TSOption says whether the RST carried the TCP timestamp option, as
	// the kernel built it (send) or parsed it (receive). Two resets one
	// end sends on a connection microseconds apart are told apart by it:
	// the receiving socket takes only the first to reach it.
	TSOption TSOption

	// Enrichment, filled after decoding; nil when not applicable.
	ZK      *ZK
	Verdict *Verdict
}

// TSOption is whether a reset carried the TCP timestamp option: an active
// reset (close, abort, timer) leaves through its socket with the options
// the connection negotiated; a reply to a segment (refused, no socket,
// listener, TIME_WAIT) is a bare header; a receiving socket parses the RST
// it takes.
type TSOption uint8

const (
	TSOptionUnknown TSOption = iota // not reported (older rstwatch kernel side, packet-level senders)
	TSOptionAbsent
	TSOptionPresent
)

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

// SenderClass names what put a reset on the wire when the TCP stack did not.
type SenderClass string

const (
	// SenderNetfilter: a firewall rule (nftables or iptables REJECT with
	// tcp-reset), told by the kernel stack that queued the packet.
	SenderNetfilter SenderClass = "netfilter"
	// SenderRawSocket: a process wrote the packet on a raw IP or packet
	// socket.
	SenderRawSocket SenderClass = "raw socket"
	// SenderUnknown: neither the TCP stack nor one of the above (another
	// BPF program, say), or not seen at all (Inferred).
	SenderUnknown SenderClass = "unknown"
)

// Sender is what made a reset that the TCP stack did not make.
type Sender struct {
	Class SenderClass
	// Detail says more where the kernel told: the firewall ("nftables",
	// "iptables (legacy)", …) or the socket ("raw IP socket", "packet
	// socket"); "" when not known.
	Detail string
	// Hook is the netfilter hook that rejected ("prerouting", "input",
	// "forward", "output", "postrouting", …), "" when not known.
	Hook   string
	NetNS  uint32 // the namespace where the reset left a device, 0 when not known
	Device string // that device, "" when not known
	// PID and Comm name the process holding the raw socket that sent it
	// (the thread group leader's name); 0 and "" when not known.
	PID  uint32
	Comm string
	// Socket is the inode of the sending raw or packet socket, 0 when none.
	Socket uint64
	// Inferred is true when the reset was not seen on the wire: a local
	// process received it, its sender's address is on this host, and no
	// TCP send of it was traced, so the TCP stack did not send it.
	Inferred bool
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
	Endpoint netip.AddrPort // the ZooKeeper server's client endpoint
	Role     string         // "client" or "server": which side this host's socket is
	// ServerVersion is what the server said ("3.8.0"), "" when unknown;
	// ServerVersionAt is when it said it (a probe before the reset).
	ServerVersion   string
	ServerVersionAt time.Time
	Mode            string // leader/follower/standalone/observer, "" when unknown
	Session         string // "0x…", "" when unknown
	// The client side, when it is a process on this host (this host is the
	// client, or the client connected over loopback or from another local
	// network namespace): what runs it, told from its executable
	// ("java", "python", "node", "go", "native"), and its ZooKeeper client
	// library and version; "" when unknown.
	ClientPID     uint32
	ClientRuntime string
	ClientLibrary string
	ClientVersion string
}

// Verdict codes: whether ZOOKEEPER-1702 explains the reset.
const (
	VerdictKnownBug    = "ZOOKEEPER-1702"
	VerdictNotKnownBug = "NOT_KNOWN_BUG"
	VerdictUnknown     = "UNKNOWN"
)

// Verdict explains a ZooKeeper reset.
type Verdict struct {
	Code string // one of the Verdict* codes
	// Situation names what happened on the connection (REFUSED,
	// LISTENER_CLOSED, ABORTIVE_CLOSE, …; see zk/diagnose).
	Situation string
	Text      string
	// Sender is the sending row of this same reset when this row is the
	// receiving one and both ends are on this host; nil otherwise.
	Sender *SendingRow
}

// SendingRow is the local end that sent a reset another local socket
// received.
type SendingRow struct {
	Local  netip.AddrPort // the sender's end
	Reason string         // the kernel's reason on the sending side
	Owner  *Owner         // nil when no local process owned the sending end
}
