package zk

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
)

func resetEvent(dir event.Direction, reason string) *event.Event {
	return &event.Event{
		Direction: dir, Reason: reason, State: "ESTABLISHED",
		Local:  netip.MustParseAddrPort("192.168.1.143:52574"),
		Remote: netip.MustParseAddrPort("192.168.2.171:10245"),
		Owner:  &event.Owner{PID: 4321, Comm: "java", Alive: true, Source: event.OwnerSocket},
	}
}

func TestJudge(t *testing.T) {
	jar := "jar name /opt/app/lib/zookeeper-3.4.5.jar"
	tests := []struct {
		name string
		dir  event.Direction
		why  string
		k    Knowledge
		code string
		has  []string
		not  []string
	}{
		{"old client, received from server", event.Receive, "", Knowledge{Role: RoleClient, ClientVersion: "3.4.5", ClientVersionSource: jar, ClientVersionKnown: true, ServerVersion: "3.4.6-1569965, built on 02/20/2014 09:09 GMT", ServerVersionSource: "srvr on 192.168.2.171:10245"},
			event.VerdictKnownBug, []string{"3.4.5", "older than 3.4.6", "as that bug's mechanism produces", jar, "server side 192.168.2.171:10245 sent the RST", "java[4321]"}, []string{"INFERRED"}},
		{"old client, sent by client", event.Send, "TCP_ABORT_ON_CLOSE", Knowledge{Role: RoleClient, ClientVersion: "3.4.5", ClientVersionKnown: true},
			event.VerdictKnownBug, []string{"this one came from the client side", "TCP_ABORT_ON_CLOSE"}, nil},
		{"fixed client 3.4.6, old server", event.Send, "TCP_ABORT_ON_CLOSE", Knowledge{Role: RoleClient, ClientVersion: "3.4.6", ClientVersionKnown: true, ServerVersion: "3.4.6-1569965, built on 02/20/2014 09:09 GMT"},
			event.VerdictNotKnownBug, []string{"has the ZOOKEEPER-1702 fix", "closed the socket with unread data", "response or ping reply"}, nil},
		{"3.5.0-alpha client", event.Send, "TCP_ABORT_ON_LINGER", Knowledge{Role: RoleClient, ClientVersion: "3.5.0-alpha", ClientVersionKnown: true},
			event.VerdictNotKnownBug, []string{"SO_LINGER 0"}, nil},
		{"client unknown, old server: inferred", event.Send, "TCP_ABORT_ON_CLOSE", Knowledge{Role: RoleServer, ServerVersion: "3.4.6-1569965, built on 02/20/2014 09:09 GMT", ServerVersionSource: "srvr on 127.0.0.1:10245"},
			event.VerdictKnownBug, []string{"INFERRED from the server version", "client library version unknown", "server side", "from srvr on 127.0.0.1:10245"}, nil},
		{"client unknown, new server", event.Send, "NO_SOCKET", Knowledge{Role: RoleServer, ServerVersion: "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC"},
			event.VerdictNotKnownBug, []string{"3.5+", "already closed", "3.8.0"}, nil},
		{"client version not known flag wins", event.Send, "TCP_TIMEWAIT_SOCKET", Knowledge{Role: RoleClient, ClientVersion: "3.4.5", ServerVersion: "3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023"},
			event.VerdictNotKnownBug, []string{"client library version unknown"}, nil},
		{"odd version, 3.6+ fingerprint", event.Send, "TCP_KEEPALIVE_TIMEOUT", Knowledge{Role: RoleClient, ServerFingerprint: "3.6+"},
			event.VerdictNotKnownBug, []string{"keepalive", "latency format suggests 3.6+"}, nil},
		{"nothing known", event.Send, "UNKNOWN", Knowledge{Role: RoleClient},
			event.VerdictUnknown, []string{"kernel older than 6.10", "neither confirmed nor excluded"}, nil},
		{"nothing known, memory", event.Send, "TCP_ABORT_ON_MEMORY", Knowledge{Role: RoleServer},
			event.VerdictUnknown, []string{"lack of memory"}, nil},
		{"received, no client version", event.Receive, "", Knowledge{Role: RoleServer, ServerVersion: "3.6.3--6401e4ad"},
			event.VerdictNotKnownBug, []string{"client side 192.168.2.171:10245 sent the RST", "reset this connection"}, nil},
	}
	for _, tt := range tests {
		ev := resetEvent(tt.dir, tt.why)
		v := Judge(ev, tt.k)
		if v.Code != tt.code {
			t.Errorf("%s: code %s, want %s (%s)", tt.name, v.Code, tt.code, v.Text)
		}
		for _, s := range tt.has {
			if !strings.Contains(v.Text, s) {
				t.Errorf("%s: text lacks %q: %s", tt.name, s, v.Text)
			}
		}
		for _, s := range tt.not {
			if strings.Contains(v.Text, s) {
				t.Errorf("%s: text has %q: %s", tt.name, s, v.Text)
			}
		}
		if n := strings.Count(v.Text, ". "); n > 1 {
			t.Errorf("%s: %d sentences: %s", tt.name, n+1, v.Text)
		}
	}
}
