package zk

import (
	"fmt"
	"strings"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Roles of this host's socket on a ZooKeeper connection.
const (
	RoleClient = "client"
	RoleServer = "server"
)

// Knowledge is what rstwatch knows about a ZooKeeper connection besides the
// event itself, and where each piece came from.
type Knowledge struct {
	Role string // RoleClient or RoleServer: this host's side

	ServerVersion       string // raw version string, "" when unknown
	ServerVersionSource string // e.g. "srvr on 10.0.0.1:2181"
	// ServerFingerprint is the latency-format guess ("3.6+", "3.4/3.5"),
	// used only when ServerVersion does not parse.
	ServerFingerprint string

	ClientVersion       string // "" when unknown
	ClientVersionSource string // e.g. "jar name /opt/app/lib/zookeeper-3.4.5.jar"
	ClientVersionKnown  bool   // false: the client library version could not be learned
}

// Judge explains a ZooKeeper reset. It is a pure function of the event and
// what is known; the text says what was measured and what was inferred.
func Judge(ev *event.Event, k Knowledge) event.Verdict {
	measured := measuredText(ev, k)
	var cv, sv Version
	clientKnown := false
	if k.ClientVersionKnown && k.ClientVersion != "" {
		v, err := ParseVersion(k.ClientVersion)
		clientKnown = err == nil
		cv = v
	}
	serverKnown := false
	if k.ServerVersion != "" {
		v, err := ParseVersion(k.ServerVersion)
		serverKnown = err == nil
		sv = v
	}
	hint := reasonHint(ev, k.Role)
	switch {
	case clientKnown && cv.ClientAffectedBy1702():
		return event.Verdict{Code: event.VerdictKnownBug, Text: measured + fmt.Sprintf(
			" The client library %s is older than 3.4.6, so it carries ZOOKEEPER-1702 (requests written before the connect response)%s.",
			cv.Short(), directionNote(ev, k.Role))}
	case clientKnown:
		return event.Verdict{Code: event.VerdictNotKnownBug, Text: measured + fmt.Sprintf(
			" The client library %s has the ZOOKEEPER-1702 fix (3.4.6+), so not that bug; inferred: %s.", cv.Short(), hint)}
	case serverKnown && sv.ServerImplies1702():
		return event.Verdict{Code: event.VerdictKnownBug, Text: measured + fmt.Sprintf(
			" INFERRED from the server version only (client library version unknown): by the operator's rule a server older than 3.5.0 (here %s) means ZOOKEEPER-1702, which Java client libraries older than 3.4.6 carry; confirm with the client's library version%s.",
			sv.Short(), directionNote(ev, k.Role))}
	case serverKnown || k.ServerFingerprint == "3.6+":
		return event.Verdict{Code: event.VerdictNotKnownBug, Text: measured + fmt.Sprintf(
			" The server is 3.5+, so by the operator's rule not ZOOKEEPER-1702 (client library version unknown); inferred: %s.", hint)}
	}
	return event.Verdict{Code: event.VerdictUnknown, Text: measured + fmt.Sprintf(
		" Neither server nor client library version is known, so ZOOKEEPER-1702 can be neither confirmed nor excluded; inferred: %s.", hint)}
}

// measuredText is the first sentence: facts from the kernel and the probes.
func measuredText(ev *event.Event, k Knowledge) string {
	var b strings.Builder
	self := fmt.Sprintf("this host (ZooKeeper %s side, %s, %s)", roleOr(k.Role), ev.Local, ownerText(ev))
	if ev.Direction == event.Receive {
		fmt.Fprintf(&b, "Measured: the %s side %s sent the RST to %s", peerRole(k.Role), ev.Remote, self)
	} else {
		fmt.Fprintf(&b, "Measured: %s sent the RST to %s", self, ev.Remote)
	}
	reason := ev.Reason
	if reason == "" {
		reason = "UNKNOWN"
	}
	fmt.Fprintf(&b, ", kernel reason %s", reason)
	if ev.State != "" {
		fmt.Fprintf(&b, " in state %s", ev.State)
	}
	fmt.Fprintf(&b, "; server version %s", versionText(k.ServerVersion, k.ServerVersionSource))
	if k.ServerVersion == "" && k.ServerFingerprint != "" {
		fmt.Fprintf(&b, " (latency format suggests %s)", k.ServerFingerprint)
	}
	clientV := ""
	if k.ClientVersionKnown {
		clientV = k.ClientVersion
	}
	fmt.Fprintf(&b, ", client library version %s.", versionText(clientV, k.ClientVersionSource))
	return b.String()
}

func versionText(v, source string) string {
	if v == "" {
		return "unknown"
	}
	if pv, err := ParseVersion(v); err == nil {
		v = pv.Short()
	}
	if source == "" {
		return v
	}
	return v + " (from " + source + ")"
}

func ownerText(ev *event.Event) string {
	if ev.Owner == nil {
		return "no owning process known"
	}
	s := fmt.Sprintf("owned by %s[%d]", ev.Owner.Comm, ev.Owner.PID)
	if !ev.Owner.Alive {
		s += " (exited)"
	}
	return s
}

func roleOr(r string) string {
	if r == "" {
		return "unknown"
	}
	return r
}

func peerRole(r string) string {
	switch r {
	case RoleClient:
		return RoleServer
	case RoleServer:
		return RoleClient
	}
	return "remote"
}

// senderRole is the ZooKeeper side that sent the RST.
func senderRole(ev *event.Event, role string) string {
	if ev.Direction == event.Receive {
		return peerRole(role)
	}
	return roleOr(role)
}

// directionNote compares the measured direction with the 1702 mechanism:
// the server closes with the client's early request unread, so the server
// sends the RST.
func directionNote(ev *event.Event, role string) string {
	switch senderRole(ev, role) {
	case RoleServer:
		return "; the RST came from the server side, as that bug's mechanism produces"
	case RoleClient:
		return "; note that bug's RST comes from the server, and this one came from the client side, so check the client's close path too"
	}
	return ""
}

// reasonHint turns the kernel's reason into where to look.
func reasonHint(ev *event.Event, role string) string {
	if ev.Direction == event.Receive {
		return fmt.Sprintf("the %s side reset this connection, so look at that host and process (the kernel's reason is only known on the sending host)", peerRole(role))
	}
	sender := roleOr(role)
	switch ev.Reason {
	case "TCP_ABORT_ON_CLOSE":
		h := fmt.Sprintf("the %s process closed the socket with unread data in its receive queue; look at that side's close path", sender)
		switch sender {
		case RoleServer:
			h += " (such as a four-letter-word probe that sent a trailing newline, or a client writing before the connect response, the 1702 mechanism)"
		case RoleClient:
			h += " (such as the client closed with a response or ping reply still queued)"
		}
		return h
	case "TCP_ABORT_ON_LINGER":
		return fmt.Sprintf("the %s process closed with SO_LINGER 0, an abortive close on purpose", sender)
	case "TCP_ABORT_ON_DATA", "NO_SOCKET", "NOT_SPECIFIED", "TCP_TIMEWAIT_SOCKET":
		return fmt.Sprintf("data arrived for a connection the %s side had already closed (such as a late response after close)", sender)
	case "TCP_KEEPALIVE_TIMEOUT":
		return "TCP keepalive probes went unanswered: the peer host or the path is gone"
	case "TCP_ABORT_ON_MEMORY":
		return "the kernel aborted an orphaned socket for lack of memory (tcp_mem / tcp_max_orphans)"
	case "TCP_DISCONNECT_WITH_DATA":
		return fmt.Sprintf("the %s process disconnected (connect AF_UNSPEC) with data pending", sender)
	case "", "UNKNOWN":
		return "the kernel reports no reason (kernel older than 6.10), so only direction and owner tell where to look"
	}
	return fmt.Sprintf("the kernel rejected a segment (%s) as invalid for the connection's state", ev.Reason)
}
