package diagnose

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/zk/hostscan"
)

var (
	t0      = time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	srvAddr = netip.MustParseAddrPort("127.0.0.1:2181")
	cliAddr = netip.MustParseAddrPort("127.0.0.1:52574")
	jvm     = &event.Owner{PID: 900, Comm: "java", Alive: true, Source: event.OwnerSocket}
	kazooP  = &event.Owner{PID: 901, Comm: "python3", Alive: true, Source: event.OwnerSocket}
	java345 = Client{PID: 902, Comm: "java", Runtime: hostscan.RuntimeJava, RuntimeSource: "executable /usr/bin/java",
		Library: hostscan.JavaClient, Version: "3.4.5", VersionSource: "jar name /opt/zookeeper-3.4.5.jar"}
	java346 = Client{PID: 902, Comm: "java", Runtime: hostscan.RuntimeJava, RuntimeSource: "executable /usr/bin/java",
		Library: hostscan.JavaClient, Version: "3.4.6", VersionSource: "jar name /opt/zookeeper-3.4.6.jar"}
	kazoo = Client{PID: 901, Comm: "python3", Runtime: hostscan.RuntimePython, RuntimeSource: "executable /usr/bin/python3.11",
		Library: hostscan.Kazoo, Version: "2.8.0.dev0", VersionSource: "/usr/lib/python3/dist-packages/kazoo-2.8.0.dev0.egg-info/PKG-INFO", Installed: true}
	server380 = Server{Version: "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC", Source: "srvr on 127.0.0.1:2181", At: t0.Add(-12 * time.Second)}
	server346 = Server{Version: "3.4.6-1569965, built on 02/20/2014 09:09 GMT", Source: "srvr on 127.0.0.1:2181", At: t0.Add(-3 * time.Second)}
)

// serverSend is a reset this host sent as the server.
func serverSend(reason, state string, owner *event.Owner) Facts {
	return Facts{At: t0, Direction: event.Send, Reason: reason, State: state, StateKnown: true, Role: RoleServer,
		Local: srvAddr, Remote: cliAddr, Endpoint: srvAddr, Owner: owner}
}

// clientSend is a reset this host sent as the client.
func clientSend(reason, state string, owner *event.Owner) Facts {
	return Facts{At: t0, Direction: event.Send, Reason: reason, State: state, StateKnown: true, Role: RoleClient,
		Local: cliAddr, Remote: srvAddr, Endpoint: srvAddr, Owner: owner}
}

// receivedBy is the receiving row of the reset f sent, on this host.
func receivedBy(f Facts, state string, owner *event.Owner) Facts {
	return Facts{At: f.At.Add(20 * time.Microsecond), Direction: event.Receive, Reason: "UNKNOWN", State: state, StateKnown: true,
		Role: otherRole(f.Role), Local: f.Remote, Remote: f.Local, Endpoint: f.Endpoint, Owner: owner,
		Peer:   &Peer{Local: f.Local, Reason: f.Reason, State: f.State, Owner: f.Owner},
		Client: f.Client, Server: f.Server, Session: f.Session, ConnMade: f.ConnMade, ConnAccepted: f.ConnAccepted}
}

func with(f Facts, mod func(*Facts)) Facts { mod(&f); return f }

// The table of situations: each row is what the kernel reports for one of
// them, with what is known of client and server.
func TestClassifySituations(t *testing.T) {
	listener := &event.Owner{PID: 900, Comm: "java", Alive: false, Source: event.OwnerListener}
	tests := []struct {
		name      string
		f         Facts
		situation Situation
		code      string
		has       []string
	}{
		{"refused: no socket, no owner", with(serverSend("NO_SOCKET", "", nil), func(f *Facts) { f.Server = server380; f.Client = java345 }),
			Refused, event.VerdictNotKnownBug, []string{"not listening at the reset", "3.8.0 (srvr on 127.0.0.1:2181, 12 s before the reset)", "connection refused", "was a refused connection attempt", "no process owned it"}},
		{"refused: received in SYN_SENT", Facts{At: t0, Direction: event.Receive, Reason: "UNKNOWN", State: "SYN_SENT", StateKnown: true, Role: RoleClient,
			Local: cliAddr, Remote: srvAddr, Endpoint: srvAddr, Owner: jvm, Client: java345, Server: server346},
			Refused, event.VerdictNotKnownBug, []string{"not listening", "refused connection attempt"}},
		{"listener closed with queued connection", with(serverSend("TCP_STATE", "CLOSE", listener), func(f *Facts) { f.Server = server380 }),
			ListenerClosed, event.VerdictNotKnownBug, []string{"accept queue", "never accepted", "not accepted yet, listener owned by java[900] (exited)"}},
		{"listener closed, owner lost (inferred)", serverSend("TCP_STATE", "CLOSE", nil),
			ListenerClosed, event.VerdictNotKnownBug, []string{"Inferred: the server's listening socket closed"}},
		{"abortive close by a client (linger 0)", with(clientSend("TCP_STATE", "CLOSE", kazooP), func(f *Facts) { f.Client = kazoo; f.Server = server380 }),
			AbortiveClose, event.VerdictNotKnownBug, []string{"SO_LINGER 0", "not the Java client", "runs Python", "kazoo 2.8.0.dev0 installed for it"}},
		{"client closed with a reply unread", with(clientSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", kazooP), func(f *Facts) { f.Client = kazoo }),
			UnreadData, event.VerdictNotKnownBug, []string{"had not read", "reply or ping answer unread", "does not apply"}},
		{"server closed with a request unread", with(serverSend("TCP_ABORT_ON_CLOSE", "CLOSE_WAIT", jvm), func(f *Facts) { f.Server = server380 }),
			UnreadData, event.VerdictNotKnownBug, []string{"the server process closed", "monitoring probe", "operator's rule, inferred from the server version 3.8.0", "not a process seen on this host"}},
		{"late data to TIME_WAIT", with(clientSend("TCP_TIMEWAIT_SOCKET", "TIME_WAIT", &event.Owner{PID: 901, Comm: "python3", Source: event.OwnerTuple}), func(f *Facts) { f.Client = kazoo }),
			LateData, event.VerdictNotKnownBug, []string{"already closed", "TIME_WAIT"}},
		{"late data, no socket, known owner", with(clientSend("NO_SOCKET", "", &event.Owner{PID: 901, Comm: "python3", Source: event.OwnerTuple}), func(f *Facts) { f.Client = kazoo }),
			LateData, event.VerdictNotKnownBug, []string{"already closed"}},
		{"late data, no socket, no owner, but accepted", with(serverSend("NO_SOCKET", "", nil), func(f *Facts) { f.ConnAccepted = true; f.Server = server346 }),
			LateData, event.VerdictKnownBug, []string{"INFERRED from the server version only", "3.4.6"}},
		{"keepalive timeout", with(clientSend("TCP_KEEPALIVE_TIMEOUT", "ESTABLISHED", jvm), func(f *Facts) { f.Client = java345 }),
			KeepaliveTimeout, event.VerdictNotKnownBug, []string{"keepalive probes went unanswered", "keepalive timeout"}},
		{"memory pressure", serverSend("TCP_ABORT_ON_MEMORY", "FIN_WAIT1", jvm),
			MemoryPressure, event.VerdictNotKnownBug, []string{"lack of memory"}},
		{"1702: old Java client, server aborts during set-up", with(serverSend("TCP_STATE", "CLOSE", jvm), func(f *Facts) { f.Client = java345; f.Server = server380; f.ConnMade = t0.Add(-40 * time.Millisecond) }),
			AbortiveClose, event.VerdictKnownBug, []string{"ZOOKEEPER-1702: the Java client library 3.4.5 is older than 3.4.6", "the RST came from the server side", "made 40 ms before the reset"}},
		{"1702 pattern, RST from the client side", with(clientSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", jvm), func(f *Facts) { f.Client = java345 }),
			UnreadData, event.VerdictKnownBug, []string{"the RST came from the client side", "check the client's close path"}},
		{"3.4.6 Java client: fixed", with(serverSend("TCP_STATE", "CLOSE", jvm), func(f *Facts) { f.Client = java346; f.Server = server346 }),
			AbortiveClose, event.VerdictNotKnownBug, []string{"3.4.6 has the fix"}},
		{"old Java client, session already set up", with(clientSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", jvm), func(f *Facts) {
			f.Client = java345
			f.ConnMade = t0.Add(-time.Minute)
			f.Session = Session{ID: "0x100000abc", FirstSeen: t0.Add(-50 * time.Second)}
		}),
			UnreadData, event.VerdictNotKnownBug, []string{"already had session 0x100000abc", "listed session 0x100000abc for this connection 50 s before"}},
		{"client unknown, old server: inferred", with(serverSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", jvm), func(f *Facts) { f.Server = server346 }),
			UnreadData, event.VerdictKnownBug, []string{"INFERRED from the server version only", "the RST came from the server side"}},
		{"nothing known, no reason (old kernel)", clientSend("UNKNOWN", "ESTABLISHED", jvm),
			NoReason, event.VerdictUnknown, []string{"before 6.10", "neither confirmed nor excluded"}},
		{"3.6+ fingerprint only", with(clientSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", jvm), func(f *Facts) { f.Server = Server{Fingerprint: "3.6+"} }),
			UnreadData, event.VerdictNotKnownBug, []string{"3.6+ reply format"}},
		{"late segment answered by the listener", with(serverSend("TCP_FLAGS", "LISTEN", jvm), func(f *Facts) { f.Client = kazoo; f.Server = server380 }),
			LateData, event.VerdictNotKnownBug, []string{"Inferred: a segment of a connection the server side had already closed reached its listening socket", "(TCP_FLAGS)", "not the Java client"}},
		{"late segment answered by the listener, received", receivedBy(with(serverSend("TCP_FLAGS", "LISTEN", jvm), func(f *Facts) { f.Client = kazoo; f.Server = server380 }), "CLOSE_WAIT", kazooP),
			LateData, event.VerdictNotKnownBug, []string{"received a RST from the server side 127.0.0.1:2181 in state CLOSE_WAIT", "kernel reason TCP_FLAGS there", "reached its listening socket"}},
		{"a listener's TCP_FLAGS with an old client: by versions", with(serverSend("TCP_FLAGS", "LISTEN", jvm), func(f *Facts) { f.Client = java345; f.Server = server380 }),
			LateData, event.VerdictKnownBug, []string{"ZOOKEEPER-1702: the Java client library 3.4.5"}},
		{"segment rejected", with(clientSend("TCP_INVALID_ACK_SEQUENCE", "ESTABLISHED", jvm), func(f *Facts) { f.Server = server380 }),
			Rejected, event.VerdictNotKnownBug, []string{"rejected a segment", "TCP_INVALID_ACK_SEQUENCE"}},
		{"connect answered by an earlier connection's ACK", with(clientSend("TCP_INVALID_ACK_SEQUENCE", "SYN_SENT", kazooP), func(f *Facts) { f.Client = kazoo; f.Server = server380 }),
			Rejected, event.VerdictNotKnownBug, []string{"connection attempt (SYN_SENT) got an acknowledgement that does not acknowledge its SYN", "reused a local port", "this connection was not established"}},
		{"received from a remote host", Facts{At: t0, Direction: event.Receive, Reason: "UNKNOWN", State: "ESTABLISHED", StateKnown: true, Role: RoleServer,
			Local: srvAddr, Remote: netip.MustParseAddrPort("192.168.1.143:52574"), Endpoint: srvAddr, Owner: jvm, Server: server346},
			ResetByPeer, event.VerdictKnownBug, []string{"the client side reset the connection", "known only on that host", "INFERRED"}},
		{"server down: last probe failed", with(clientSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", jvm), func(f *Facts) {
			f.Server = server380
			f.Server.FailedAt, f.Server.Failure = t0.Add(-2*time.Second), "dial: connection refused"
		}),
			UnreadData, event.VerdictNotKnownBug, []string{"the last probe, 2.0 s before the reset, failed: dial: connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Classify(tt.f)
			text := Explain(tt.f, d)
			if d.Situation != tt.situation || d.Code != tt.code {
				t.Errorf("got %s %s, want %s %s: %s", d.Situation, d.Code, tt.situation, tt.code, text)
			}
			for _, s := range tt.has {
				if !strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
					t.Errorf("text lacks %q: %s", s, text)
				}
			}
			if strings.Contains(text, "invalid for the connection's state") && tt.f.Reason == "TCP_STATE" {
				t.Errorf("TCP_STATE explained as an invalid segment: %s", text)
			}
			if !strings.HasPrefix(text, "Measured: ") {
				t.Errorf("text does not start with what was measured: %s", text)
			}
		})
	}
}

// ZOOKEEPER-1702 is never the verdict for what its mechanism cannot
// produce, whatever the versions, nor for a client that is not a JVM.
func TestClassifyNever1702(t *testing.T) {
	for _, f := range []Facts{
		with(serverSend("NO_SOCKET", "", nil), func(f *Facts) { f.Client = java345; f.Server = server346 }),
		{At: t0, Direction: event.Receive, State: "SYN_SENT", StateKnown: true, Role: RoleClient, Owner: jvm, Client: java345, Server: server346},
		with(serverSend("TCP_STATE", "CLOSE", &event.Owner{PID: 900, Comm: "java", Source: event.OwnerListener}), func(f *Facts) { f.Client = java345; f.Server = server346 }),
		with(serverSend("TCP_INVALID_SYN", "NEW_SYN_RECV", &event.Owner{PID: 900, Comm: "java", Source: event.OwnerListener}), func(f *Facts) { f.Client = java345 }),
		with(clientSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", kazooP), func(f *Facts) { f.Client = kazoo; f.Server = server346 }),
		// The case: a Python process whose environment names an
		// old jar is still Python.
		with(clientSend("NO_SOCKET", "", kazooP), func(f *Facts) { f.Client = kazoo; f.Server = server346 }),
	} {
		if d := Classify(f); d.Code == event.VerdictKnownBug {
			t.Errorf("%+v: %s", f, Explain(f, d))
		}
	}
}

// The two rows of one reset seen on both ends of this host get the same
// situation and code, and the receiving row names the sending row's owner.
func TestClassifyBothRowsAgree(t *testing.T) {
	sends := []Facts{
		with(serverSend("NO_SOCKET", "", nil), func(f *Facts) { f.Client = java345; f.Server = server380 }),
		with(serverSend("TCP_STATE", "CLOSE", &event.Owner{PID: 900, Comm: "java", Source: event.OwnerListener}), func(f *Facts) { f.Client = kazoo; f.Server = server380 }),
		with(serverSend("TCP_STATE", "CLOSE", jvm), func(f *Facts) { f.Client = java345; f.Server = server380 }),
		with(clientSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", kazooP), func(f *Facts) { f.Client = kazoo; f.Server = server380 }),
		with(clientSend("TCP_STATE", "CLOSE", jvm), func(f *Facts) { f.Client = java346; f.Server = server346 }),
		with(serverSend("TCP_ABORT_ON_CLOSE", "ESTABLISHED", jvm), func(f *Facts) { f.Server = server346 }),
	}
	for _, s := range sends {
		state := "ESTABLISHED"
		if s.Reason == "NO_SOCKET" && s.Owner == nil {
			state = "SYN_SENT"
		}
		var owner *event.Owner = jvm
		r := receivedBy(s, state, owner)
		ds, dr := Classify(s), Classify(r)
		if ds.Code != dr.Code || ds.Situation != dr.Situation {
			t.Errorf("send %s %s / receive %s %s\n send: %s\n recv: %s", ds.Situation, ds.Code, dr.Situation, dr.Code, Explain(s, ds), Explain(r, dr))
		}
		if text := Explain(r, dr); !strings.Contains(text, "the sending end is on this host too ("+ownerText(s.Owner)+")") {
			t.Errorf("receiving row does not name the sender's owner: %s", text)
		}
	}
}

func TestServerVerdict(t *testing.T) {
	for _, tc := range []struct {
		s    Server
		code string
	}{
		{server346, event.VerdictKnownBug},
		{server380, event.VerdictNotKnownBug},
		{Server{Fingerprint: "3.6+"}, event.VerdictNotKnownBug},
		{Server{}, event.VerdictUnknown},
	} {
		if d := ServerVerdict(tc.s); d.Code != tc.code {
			t.Errorf("%+v: %s, want %s", tc.s, d.Code, tc.code)
		}
	}
}
