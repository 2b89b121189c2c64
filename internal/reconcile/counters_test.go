package reconcile

import (
	"testing"
)

const snmp = `Ip: Forwarding DefaultTTL InReceives
Ip: 1 64 1245400
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 224486 95694 128763 138 2 1245400 1243597 1 0 128850 0
Udp: InDatagrams NoPorts
Udp: 5 6
`

const netstat = `TcpExt: SyncookiesSent EmbryonicRsts TCPAbortOnData TCPAbortOnClose TCPAbortOnMemory TCPAbortOnTimeout TCPAbortOnLinger TCPAbortFailed
TcpExt: 0 1 2 3 4 5 6 7
IpExt: InNoRoutes
IpExt: 0
`

func TestParse(t *testing.T) {
	c, err := Parse([]byte(snmp), []byte(netstat))
	if err != nil {
		t.Fatal(err)
	}
	want := Counters{OutRsts: 128850, AbortOnData: 2, AbortOnClose: 3, AbortOnMemory: 4, AbortOnTimeout: 5, AbortOnLinger: 6}
	if c != want {
		t.Fatalf("got %+v, want %+v", c, want)
	}
	if d := want.Sub(Counters{OutRsts: 850, AbortOnClose: 1}); d.OutRsts != 128000 || d.AbortOnClose != 2 {
		t.Fatalf("Sub: %+v", d)
	}
}

func TestParseBad(t *testing.T) {
	for name, in := range map[string][2]string{
		"no tcp":      {"Udp: a\nUdp: 1\n", netstat},
		"short":       {"Tcp: OutRsts InErrs\nTcp: 5\n", netstat},
		"no outrsts":  {"Tcp: InErrs\nTcp: 5\n", netstat},
		"no tcpext":   {snmp, "IpExt: a\nIpExt: 1\n"},
		"header only": {"Tcp: OutRsts\n", netstat},
	} {
		if _, err := Parse([]byte(in[0]), []byte(in[1])); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(snmp), []byte(netstat))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		Parse(a, b)
	})
}
