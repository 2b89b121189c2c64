package diagnose

import (
	"fmt"
	"strings"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/workload"
	"github.com/rstwatch/rstwatch/zk"
	"github.com/rstwatch/rstwatch/zk/hostscan"
)

// Explain writes the verdict text for d, which Classify made from f: what
// was measured (by the kernel, a server, /proc), what that means and is
// inferred, and where to look next, in an operator's words.
func Explain(f Facts, d Diagnosis) string {
	var b strings.Builder
	b.WriteString("Measured: ")
	b.WriteString(measured(f))
	b.WriteString(" ")
	b.WriteString(capitalize(meaning(f, d)))
	b.WriteString(" ")
	b.WriteString(verdictText(f, d))
	return b.String()
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// measured is the facts, each with where it came from.
func measured(f Facts) string {
	var parts []string
	self := fmt.Sprintf("this host (ZooKeeper %s side", orUnknown(f.Role))
	if f.Local.IsValid() {
		self += " " + f.Local.String()
	}
	self += ", " + ownerText(f.Owner) + ")"
	remote := "the " + orRemote(otherRole(f.Role)) + " side"
	if f.Remote.IsValid() {
		remote += " " + f.Remote.String()
	}
	reason := f.Reason
	if reason == "" {
		reason = "UNKNOWN"
	}
	var first string
	if f.Direction == event.Send {
		first = fmt.Sprintf("%s sent the RST to %s, kernel reason %s", self, remote, reason)
		if f.StateKnown {
			first += " " + stateText(f.State)
		}
	} else {
		first = fmt.Sprintf("%s received a RST from %s", self, remote)
		if f.StateKnown && f.State != "" {
			first += " in state " + f.State
		}
		if p := f.Peer; p != nil {
			first += fmt.Sprintf("; the sending end is on this host too (%s), kernel reason %s there", ownerText(p.Owner), orUnknown(p.Reason))
			if len(p.Others) > 0 {
				first += fmt.Sprintf(" (inferred: that end also sent %s on this connection at the same time, and which reset this socket took first is not visible; the one nearest in time is taken)", strings.Join(p.Others, ", "))
			}
		}
	}
	parts = append(parts, first)
	parts = append(parts, serverText(f))
	if c := clientText(f); c != "" {
		parts = append(parts, c)
	}
	if !f.ConnMade.IsZero() && !f.At.IsZero() {
		parts = append(parts, "the connection was made "+ago(f.ConnMade, f.At)+" the reset")
	}
	if f.Session.ID != "" {
		parts = append(parts, fmt.Sprintf("the server listed session %s for this connection %s the reset", f.Session.ID, ago(f.Session.FirstSeen, f.At)))
	}
	return strings.Join(parts, "; ") + "."
}

func stateText(state string) string {
	if state == "" {
		return "with no socket"
	}
	return "in state " + state
}

func ownerText(o *event.Owner) string {
	if o == nil {
		return "no process owned it"
	}
	s := fmt.Sprintf("owned by %s[%d]", o.Comm, o.PID)
	if o.Source == event.OwnerListener {
		s = fmt.Sprintf("not accepted yet, listener owned by %s[%d]", o.Comm, o.PID)
	}
	s += inWorkload(o.Workload)
	if !o.Alive {
		s += " (exited)"
	}
	return s
}

// inWorkload names a process's unit, container or pod for a sentence
// (" in pod shop/checkout-7d9c (container app)"), "" when none is known.
func inWorkload(w *event.Workload) string {
	if d := workload.Describe(w); d != "" {
		return " in " + d
	}
	return ""
}

// serverText says the server's version and when it was measured, or that
// the server was not listening.
func serverText(f Facts) string {
	s := f.Server
	refusedHere := f.Role == RoleServer && f.Direction == event.Send && classifyRefused(f) ||
		f.Role == RoleClient && f.Direction == event.Receive && classifyRefused(f)
	var out string
	switch {
	case s.Version != "":
		out = "server version " + short(s.Version) + " (" + s.Source
		if !s.At.IsZero() && !f.At.IsZero() {
			out += ", " + ago(s.At, f.At) + " the reset"
		}
		out += ")"
	case s.Fingerprint != "":
		out = "server version unknown (its reply format is that of " + s.Fingerprint + ")"
	default:
		out = "server version unknown"
	}
	switch {
	case refusedHere:
		out = "the server was not listening at the reset; " + out
	case !s.FailedAt.IsZero() && !f.At.IsZero() && s.FailedAt.After(s.At):
		out += fmt.Sprintf("; the last probe, %s the reset, failed: %s", ago(s.FailedAt, f.At), s.Failure)
	}
	return out
}

func classifyRefused(f Facts) bool {
	s, _, _ := situation(f)
	return s == Refused
}

// clientText names the client process, its runtime and its library.
func clientText(f Facts) string {
	c := f.Client
	if c.PID == 0 {
		if f.Role == RoleServer {
			return "the client is not a process seen on this host, so its library is unknown"
		}
		return "the client process is unknown"
	}
	s := fmt.Sprintf("client %s[%d]", c.Comm, c.PID) + inWorkload(c.Workload)
	if c.Runtime == "" {
		return s + ", its runtime unknown (/proc could not be read)"
	}
	s += " runs " + runtimeName(c.Runtime) + " (" + c.RuntimeSource + ")"
	switch {
	case c.Library == "":
		s += ", no ZooKeeper client library version found"
	case c.Version == "":
		s += ", " + c.Library + " (" + c.VersionSource + "), version unknown"
	case c.Installed:
		s += fmt.Sprintf(", %s %s installed for it (%s; whether it loaded that copy is not visible in /proc)", c.Library, c.Version, c.VersionSource)
	default:
		s += fmt.Sprintf(", %s %s (from %s)", c.Library, c.Version, c.VersionSource)
	}
	if !c.LearnedAt.IsZero() && !f.At.IsZero() {
		s += ", read " + ago(c.LearnedAt, f.At) + " the reset"
	}
	return s
}

func runtimeName(kind string) string {
	switch kind {
	case hostscan.RuntimeJava:
		return "a JVM"
	case hostscan.RuntimePython:
		return "Python"
	case hostscan.RuntimeNode:
		return "Node.js"
	case hostscan.RuntimeGo:
		return "a Go program"
	}
	return "a native program"
}

// meaning explains the situation and where to look.
func meaning(f Facts, d Diagnosis) string {
	sender := orUnknown(d.Sender)
	inf := ""
	if d.Inferred {
		inf = "Inferred: "
	}
	switch d.Situation {
	case Refused:
		return inf + "the connection attempt to " + endpointText(f) + " found nothing listening (connection refused): the ZooKeeper server was down or restarting, or the client has the wrong address. Look at the server process and its restarts; clients retry on their own."
	case ListenerClosed:
		return inf + "the server's listening socket closed while this connection waited in its accept queue, never accepted, so the kernel reset it: the server process stopped or closed its port (killed, restarted, crashed). Look at why it went away; the client reconnects."
	case AbortiveClose:
		return inf + "the " + sender + " process aborted the connection on purpose: a close with SO_LINGER 0 or a disconnect (both are TCP_STATE since Linux 6.10; TCP_ABORT_ON_LINGER is the FIN_WAIT2 linger2 timeout). Look at that side's close path: a ZooKeeper server (3.8's NIO server, for one) closes this way a connection it refuses at accept, e.g. over maxClientCnxns from one address; a client library may close abortively."
	case UnreadData:
		s := "the " + sender + " process closed the socket while data it had not read was still queued (TCP_ABORT_ON_CLOSE), so its kernel reset the connection instead of closing it."
		switch d.Sender {
		case RoleClient:
			s += " A client that quits or closes with a reply or ping answer unread does this (killed, or closing without ending its session): look at the client's shutdown."
		case RoleServer:
			s += " A server that closes a connection with the client's request unread does this (a client writing before the connect response, the ZOOKEEPER-1702 mechanism, or a monitoring probe sending a newline after its four-letter word): look at the server's log for why it closed."
		}
		return inf + s
	case LateData:
		if reason, _ := sentBy(f); reason == "TCP_FLAGS" {
			return inf + "a segment of a connection the " + sender + " side had already closed reached its listening socket (no socket of the connection was left), which answered with a RST (TCP_FLAGS): the other side's data, acknowledgement or FIN crossed the close, or the connection belonged to a server process that has since restarted. Look at why that side closed (often a reset of its own just before this one); this one follows from it."
		}
		return inf + "data arrived for a connection the " + sender + " side had already closed (its socket gone, or in TIME_WAIT/FIN_WAIT), so its kernel answered with a RST: the other side kept writing after the close, such as a reply or ping that crossed a close. Usually harmless; look at the other side if it repeats."
	case KeepaliveTimeout:
		return inf + "TCP keepalive probes went unanswered and the kernel gave up: the peer host, or the path to it, is gone. Look at the network and the peer host."
	case MemoryPressure:
		return inf + "the kernel aborted an orphaned socket for lack of memory (tcp_mem, tcp_max_orphans): look at this host's TCP memory."
	case Rejected:
		if reason, state := sentBy(f); reason == "TCP_INVALID_ACK_SEQUENCE" && state == "SYN_SENT" {
			return inf + "the " + sender + " side's connection attempt (SYN_SENT) got an acknowledgement that does not acknowledge its SYN (TCP_INVALID_ACK_SEQUENCE), so its kernel reset it. The other end usually still held an earlier connection with the same addresses and ports (in TIME_WAIT, or half-open after a crash or restart) and answered with that connection's ACK: the new connection reused a local port too soon. The reset clears the old connection and the SYN's retransmission connects; look at the other end only if it repeats."
		}
		return inf + fmt.Sprintf("the kernel rejected a segment of this connection (%s) and reset it; look at the network path (middleboxes, retransmissions) and the peer.", orUnknown(f.Reason))
	case NoReason:
		return inf + "this kernel reports no reason for resets (before 6.10), so only the direction, state and owner tell where to look."
	case ResetByPeer:
		return inf + "the " + sender + " side reset the connection; why is known only on that host (its kernel's reason): look there, e.g. run rstwatch on it."
	}
	return ""
}

// sentBy is the kernel's reason and the TCP state at the sending end: this
// row's when it sent the RST, the paired sending row's when it received
// it; "" for what is not known.
func sentBy(f Facts) (reason, state string) {
	if f.Direction == event.Receive {
		if f.Peer == nil {
			return "", ""
		}
		return f.Peer.Reason, f.Peer.State
	}
	if !f.StateKnown {
		return f.Reason, ""
	}
	return f.Reason, f.State
}

func endpointText(f Facts) string {
	if f.Endpoint.IsValid() {
		return f.Endpoint.String()
	}
	return "the server"
}

// verdictText says why the code is what it is.
func verdictText(f Facts, d Diagnosis) string {
	switch d.Rule {
	case RuleMechanism:
		return "Not ZOOKEEPER-1702: that bug's RST comes on an established connection during session set-up, and this " + notSetupText(d.Situation) + "."
	case RuleNotJava:
		return "Not ZOOKEEPER-1702: the client is not the Java client (it runs " + runtimeName(f.Client.Runtime) + "), and ZOOKEEPER-1702 is a bug of the Java client library, so it does not apply whatever the version."
	case RuleSetupDone:
		return fmt.Sprintf("Not ZOOKEEPER-1702: the connection already had session %s before the reset, so session set-up, where that bug happens, was over.", f.Session.ID)
	case RuleClientOld:
		return fmt.Sprintf("ZOOKEEPER-1702: the Java client library %s is older than 3.4.6, so it carries that bug (requests written before the connect response), and this reset came on an established connection with no session listed for it yet, as that bug's do; %s.", d.ClientVersion.Short(), directionNote(d.Sender))
	case RuleClientFixed:
		return fmt.Sprintf("Not ZOOKEEPER-1702: the Java client library %s has the fix (3.4.6+).", d.ClientVersion.Short())
	case RuleServerOld:
		return fmt.Sprintf("ZOOKEEPER-1702, INFERRED from the server version only (the client's library is unknown): by the operator's rule a server older than 3.5.0 (here %s) means that bug, which Java clients older than 3.4.6 carry; confirm with the client's library version; %s.", d.ServerVersion.Short(), directionNote(d.Sender))
	case RuleServerNew:
		return fmt.Sprintf("Not ZOOKEEPER-1702 by the operator's rule, inferred from the server version %s (3.5.0+); the client's library is unknown.", d.ServerVersion.Short())
	case RuleServerFingerprint:
		return "Not ZOOKEEPER-1702 by the operator's rule, inferred from the server's 3.6+ reply format; the client's library is unknown."
	}
	return "Neither the client's library nor the server's version is known, so ZOOKEEPER-1702 can be neither confirmed nor excluded."
}

func notSetupText(s Situation) string {
	switch s {
	case Refused:
		return "was a refused connection attempt"
	case ListenerClosed:
		return "connection was never accepted by the server"
	case KeepaliveTimeout:
		return "was a keepalive timeout on an idle connection"
	case MemoryPressure:
		return "was an orphaned socket aborted for memory"
	}
	return "connection was not established"
}

// directionNote compares the measured sender with the bug's mechanism: the
// server closes with the client's early request unread.
func directionNote(sender string) string {
	switch sender {
	case RoleServer:
		return "the RST came from the server side, as that bug's mechanism produces"
	case RoleClient:
		return "the RST came from the client side, while that bug's own RST comes from the server: check the client's close path too"
	}
	return "which side sent the RST is not known"
}

// ago says how long before (or after) ref t was: "12 s before".
func ago(t, ref time.Time) string {
	d := ref.Sub(t)
	word := "before"
	if d < 0 {
		d, word = -d, "after"
	}
	return humanDuration(d) + " " + word
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return "under 1 ms"
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < 2*time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}

func short(v string) string {
	if p, err := zk.ParseVersion(v); err == nil {
		return p.Short()
	}
	return v
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func orRemote(s string) string {
	if s == "" {
		return "remote"
	}
	return s
}
