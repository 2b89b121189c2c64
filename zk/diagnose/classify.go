// Package diagnose turns a TCP reset on a ZooKeeper connection into a
// diagnosis: what happened on the connection (the situation), whether
// ZOOKEEPER-1702 explains it (the verdict code), and a text that says what
// was measured, what was inferred and where to look next.
//
// Classify is the one rule, a pure function of what is known (Facts);
// Explain writes the text from the same facts. trace (Enricher.Enrich),
// serve (Enricher.CountVerdict) and zk probe (ServerVerdict) all call
// them. The Prober and the Enricher gather the facts: server versions and
// sessions over the wire, client runtimes and libraries from /proc.
package diagnose

import (
	"net/netip"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/zk"
	"github.com/rstwatch/rstwatch/zk/hostscan"
)

// Roles of this host's socket on a ZooKeeper connection.
const (
	RoleClient = "client"
	RoleServer = "server"
)

// Facts is everything known about one reset on a ZooKeeper connection,
// each piece from the kernel, a server or /proc. Zero values mean unknown.
type Facts struct {
	At        time.Time
	Direction event.Direction
	Reason    string // the kernel's sk_rst_reason; "" or "UNKNOWN" when it gave none
	State     string // TCP state of this host's socket, "" when there was none
	// StateKnown is false where the state was not recorded: then State
	// says nothing.
	StateKnown bool
	Role       string         // this host's side: RoleClient, RoleServer, "" unknown
	Local      netip.AddrPort // this host's end; invalid for serve's counts
	Remote     netip.AddrPort
	Endpoint   netip.AddrPort // the server's client endpoint
	Owner      *event.Owner   // this host's socket's owner, nil when none was known

	// Peer is the sending end of this reset when this row is the
	// receiving one and the sending row was seen on this host too.
	Peer *Peer

	Client  Client
	Server  Server
	Session Session
	// ConnMade is when the connection was made (a connect or accept the
	// kernel reported), zero when not seen; ConnAccepted says the server's
	// accept of it was seen on this host.
	ConnMade     time.Time
	ConnAccepted bool
}

// Peer is the sending row of the same reset, seen on this host.
type Peer struct {
	Local  netip.AddrPort
	Reason string
	State  string
	Owner  *event.Owner
	// Others are the reasons of other resets that end sent on this
	// connection at the same time, which the kernel's facts could not rule
	// out as the one this socket took: the pairing is then inferred.
	Others []string
}

// Client is the ZooKeeper client process, when it is on this host.
type Client struct {
	PID     uint32 // 0 when the client process is not known
	Comm    string
	Runtime string // hostscan.Runtime*, "" when unknown
	// RuntimeSource says how the runtime was told ("executable /usr/bin/java").
	RuntimeSource string
	Library       string // hostscan.JavaClient, hostscan.Kazoo, …; "" when none found
	Version       string // the library's version, "" when unknown
	VersionSource string
	Installed     bool      // the library was found installed for the runtime, not read from the process
	LearnedAt     time.Time // when /proc was read
	// Workload is the client's unit, container or pod, from the cgroup the
	// kernel captured with its socket's owner; nil when not known.
	Workload *event.Workload
}

// Java reports whether the client is known to be a JVM.
func (c Client) Java() bool { return c.Runtime == hostscan.RuntimeJava }

// Server is what the server said about itself, and when.
type Server struct {
	Version     string    // raw version line, "" when unknown
	Mode        string    // standalone, leader, follower, observer; "" when unknown
	Source      string    // "srvr on 127.0.0.1:2181" or an AdminServer URL
	At          time.Time // when it was said
	Fingerprint string    // latency-format guess ("3.6+", "3.4/3.5") when Version does not parse
	// FailedAt and Failure: the last probe after At failed (e.g. refused).
	FailedAt time.Time
	Failure  string
}

// Session is the session the server listed for this connection.
type Session struct {
	ID        string    // "0x…"
	FirstSeen time.Time // the first client list that showed it
}

// Situation names what happened on the connection.
type Situation string

// The situations, each with its explanation in Explain and a test on real
// sockets.
const (
	// Refused: a connection attempt reached a port nothing listened on.
	Refused Situation = "REFUSED"
	// ListenerClosed: the listening socket closed with this connection
	// still in its accept queue, never accepted.
	ListenerClosed Situation = "LISTENER_CLOSED"
	// AbortiveClose: the owner aborted the connection on purpose: close
	// with SO_LINGER 0, or a disconnect (TCP_STATE on 6.10+).
	AbortiveClose Situation = "ABORTIVE_CLOSE"
	// UnreadData: the owner closed with data it had not read.
	UnreadData Situation = "UNREAD_DATA"
	// LateData: data arrived for a connection the sender had closed.
	LateData Situation = "LATE_DATA"
	// KeepaliveTimeout: keepalive probes went unanswered.
	KeepaliveTimeout Situation = "KEEPALIVE_TIMEOUT"
	// MemoryPressure: an orphaned socket aborted for lack of memory.
	MemoryPressure Situation = "MEMORY_PRESSURE"
	// Rejected: the kernel rejected a segment for the connection's state.
	Rejected Situation = "SEGMENT_REJECTED"
	// ResetByPeer: received from a sender not on this host (or not seen).
	ResetByPeer Situation = "RESET_BY_PEER"
	// NoReason: sent by a kernel that reports no reason (before 6.10).
	NoReason Situation = "NO_REASON"
)

// Rule says which fact decided the verdict code.
type Rule int

const (
	RuleMechanism         Rule = iota // ZOOKEEPER-1702 cannot produce this situation
	RuleNotJava                       // the client is not the Java client
	RuleSetupDone                     // the connection already had its session
	RuleClientOld                     // Java client library < 3.4.6
	RuleClientFixed                   // Java client library >= 3.4.6
	RuleServerOld                     // operator's rule: server < 3.5.0 (client unknown)
	RuleServerNew                     // operator's rule: server >= 3.5.0
	RuleServerFingerprint             // 3.6+ reply format, version line unparsable
	RuleNothingKnown                  // neither version known
)

// Diagnosis is Classify's answer.
type Diagnosis struct {
	Situation Situation
	// Inferred: the situation is inferred, not read from the kernel
	// (e.g. no socket and no owner taken for a refused connection).
	Inferred bool
	// Sender is the ZooKeeper side that sent the RST: RoleClient,
	// RoleServer, "" when unknown.
	Sender string
	Code   string // event.Verdict*
	Rule   Rule
	// ClientVersion and ServerVersion are the parsed versions the rule
	// used, when it used one.
	ClientVersion, ServerVersion zk.Version
}

// Classify decides the situation and the verdict code from the facts. It
// is pure: the same facts give the same diagnosis, in trace, serve and zk
// probe alike.
func Classify(f Facts) Diagnosis {
	d := Diagnosis{Sender: senderRole(f)}
	var can1702 bool
	d.Situation, d.Inferred, can1702 = situation(f)
	switch {
	case !can1702:
		d.Code, d.Rule = event.VerdictNotKnownBug, RuleMechanism
	case f.Client.Runtime != "" && !f.Client.Java():
		d.Code, d.Rule = event.VerdictNotKnownBug, RuleNotJava
	case setupDone(f):
		d.Code, d.Rule = event.VerdictNotKnownBug, RuleSetupDone
	case f.Client.Java() && f.Client.Library == hostscan.JavaClient && parses(f.Client.Version, &d.ClientVersion):
		if d.ClientVersion.ClientAffectedBy1702() {
			d.Code, d.Rule = event.VerdictKnownBug, RuleClientOld
		} else {
			d.Code, d.Rule = event.VerdictNotKnownBug, RuleClientFixed
		}
	case parses(f.Server.Version, &d.ServerVersion):
		if d.ServerVersion.ServerImplies1702() {
			d.Code, d.Rule = event.VerdictKnownBug, RuleServerOld
		} else {
			d.Code, d.Rule = event.VerdictNotKnownBug, RuleServerNew
		}
	case f.Server.Fingerprint == "3.6+":
		d.Code, d.Rule = event.VerdictNotKnownBug, RuleServerFingerprint
	default:
		d.Code, d.Rule = event.VerdictUnknown, RuleNothingKnown
	}
	return d
}

func parses(s string, v *zk.Version) bool {
	if s == "" {
		return false
	}
	p, err := zk.ParseVersion(s)
	if err != nil {
		return false
	}
	*v = p
	return true
}

// setupDone: the server listed a session for this very connection before
// the reset, so session set-up (where ZOOKEEPER-1702 happens) was over.
// Only when the connection's start is known: an earlier connection from
// the same address and port may have had that session.
func setupDone(f Facts) bool {
	return f.Session.ID != "" && !f.ConnMade.IsZero() && !f.Session.FirstSeen.Before(f.ConnMade) &&
		(f.At.IsZero() || !f.Session.FirstSeen.After(f.At))
}

func senderRole(f Facts) string {
	if f.Direction == event.Send {
		return f.Role
	}
	return otherRole(f.Role)
}

func otherRole(r string) string {
	switch r {
	case RoleClient:
		return RoleServer
	case RoleServer:
		return RoleClient
	}
	return ""
}

// notEstablished are states in which a connection never carried the
// session handshake's data: ZOOKEEPER-1702 cannot happen there.
var notEstablished = map[string]bool{"SYN_SENT": true, "SYN_RECV": true, "NEW_SYN_RECV": true, "LISTEN": true}

// closing are states of a connection its owner has closed.
var closing = map[string]bool{"FIN_WAIT1": true, "FIN_WAIT2": true, "CLOSING": true, "LAST_ACK": true, "TIME_WAIT": true, "CLOSE": true}

// situation reads the kernel's facts. can1702 says whether the
// ZOOKEEPER-1702 mechanism (an established connection closed during
// session set-up) can produce it at all.
func situation(f Facts) (s Situation, inferred, can1702 bool) {
	if f.Direction == event.Receive {
		if f.StateKnown && f.State == "SYN_SENT" {
			return Refused, false, false // the RST answered this host's SYN
		}
		if f.Peer != nil {
			// Both ends are here: the sending row knows why.
			s, inferred, can1702 = sent(f.Peer.Reason, f.Peer.State, true, f.Peer.Owner)
			if f.StateKnown && notEstablished[f.State] {
				can1702 = false
			}
			return s, inferred, can1702
		}
		return ResetByPeer, false, !(f.StateKnown && notEstablished[f.State])
	}
	s, inferred, can1702 = sent(f.Reason, f.State, f.StateKnown, f.Owner)
	if s == Refused && f.ConnAccepted {
		// The server had accepted this connection: not a refused one,
		// but data after the server's socket was gone.
		s, inferred, can1702 = LateData, true, true
	}
	return s, inferred, can1702
}

// sent classifies a reset this host (or a local peer) sent.
func sent(reason, state string, stateKnown bool, owner *event.Owner) (Situation, bool, bool) {
	established := !(stateKnown && notEstablished[state])
	listener := owner != nil && owner.Source == event.OwnerListener
	switch reason {
	case "NO_SOCKET":
		if owner == nil {
			// No socket, and no local process ever owned this end: a
			// connection attempt to a port nothing listened on.
			return Refused, true, false
		}
		return LateData, false, established
	case "TCP_TIMEWAIT_SOCKET", "TCP_ABORT_ON_DATA":
		return LateData, false, established
	case "TCP_ABORT_ON_CLOSE":
		return UnreadData, false, established
	case "TCP_STATE":
		switch {
		case listener:
			return ListenerClosed, false, false
		case owner == nil && (!stateKnown || state == "CLOSE"):
			// A local abort of a connection no process had accepted: a
			// listener closing with it queued.
			return ListenerClosed, true, false
		}
		return AbortiveClose, false, established
	case "TCP_ABORT_ON_LINGER", "TCP_DISCONNECT_WITH_DATA":
		return AbortiveClose, false, established
	case "TCP_KEEPALIVE_TIMEOUT":
		return KeepaliveTimeout, false, false
	case "TCP_ABORT_ON_MEMORY":
		return MemoryPressure, false, false
	case "", "UNKNOWN":
		return NoReason, false, established && !listener
	case "NOT_SPECIFIED":
		if stateKnown && closing[state] {
			return LateData, true, true
		}
	case "TCP_FLAGS":
		if stateKnown && state == "LISTEN" {
			// A listener resets only a segment carrying an ACK: one of a
			// connection this side no longer has (its socket closed and
			// unhashed, e.g. a segment crossing an abortive close, or a
			// server restarted), since no connection socket matched.
			return LateData, true, true
		}
	}
	return Rejected, false, established && !listener
}

// ServerVerdict is the verdict zk probe gives a server: what Classify says
// of a reset on an established connection to it from a client whose
// library is not known, i.e. the operator's rule on the server version.
func ServerVerdict(s Server) Diagnosis {
	return Classify(Facts{Direction: event.Receive, State: "ESTABLISHED", StateKnown: true, Role: RoleClient, Server: s})
}
