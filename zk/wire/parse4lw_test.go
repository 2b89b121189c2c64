package wire

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseStatFormats(t *testing.T) {
	tests := []struct {
		file        string
		short, mode string
		min, max    int64
		avg         float64
		decimal     bool
		zxid        uint64
		nodes       int64
		clients     int
		fingerprint string
	}{
		{"3.4.6-srvr.txt", "3.4.6", "follower", 0, 12, 0, false, 0x100000004, 4, 0, "3.4/3.5"},
		{"3.4.6-stat.txt", "3.4.6", "follower", 0, 12, 0, false, 0x100000004, 4, 2, "3.4/3.5"},
		{"3.5.3-stat.txt", "3.5.3-beta", "leader", 0, 26, 2, false, 0x200000002, 5, 1, "3.4/3.5"},
		{"3.6.3-srvr.txt", "3.6.3", "standalone", 1, 13, 7, true, 0, 5, 0, "3.6+"},
		{"3.9.2-srvr.txt", "3.9.2", "follower", 0, 1, 0.3333, true, 3, 6, 0, "3.6+"},
		{"real-3.8.0-srvr.txt", "3.8.0", "standalone", 17, 17, 17, true, 0x1, 5, 0, "3.6+"},
		{"real-3.8.0-stat.txt", "3.8.0", "standalone", 17, 17, 17, true, 0x1, 5, 2, "3.6+"},
	}
	for _, tt := range tests {
		s, err := ParseStat(readTestdata(t, tt.file))
		if err != nil {
			t.Errorf("%s: %v", tt.file, err)
			continue
		}
		if s.Version.Short() != tt.short || s.Mode != tt.mode || s.LatencyMin != tt.min || s.LatencyMax != tt.max ||
			s.LatencyAvg != tt.avg || s.AvgDecimal != tt.decimal || s.Zxid != tt.zxid || s.NodeCount != tt.nodes ||
			len(s.Clients) != tt.clients || s.Fingerprint() != tt.fingerprint {
			t.Errorf("%s: got %+v (fingerprint %q)", tt.file, s, s.Fingerprint())
		}
	}
	s, _ := ParseStat(readTestdata(t, "3.4.6-stat.txt"))
	want := netip.MustParseAddrPort("[::1]:40616")
	if s.Clients[1].Addr != want || s.Clients[0].Received != 1043 || s.Received != 1045 || s.Connections != 2 {
		t.Errorf("3.4.6 stat clients: %+v", s.Clients)
	}
	s, _ = ParseStat(readTestdata(t, "3.5.3-stat.txt"))
	if s.Extra["Proposal sizes last/min/max"] != "36/32/48" {
		t.Errorf("3.5.3 extra: %v", s.Extra)
	}
}

func TestParseCons(t *testing.T) {
	cs, err := ParseCons(readTestdata(t, "3.4.6-cons.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Session() != "0x14a4a8e1e3b0001" || cs[0].Addr.String() != "10.1.2.3:52574" || cs[0].Fields["lop"] != "PING" || cs[1].Session() != "" {
		t.Errorf("3.4.6 cons: %+v", cs)
	}
	cs, err = ParseCons(readTestdata(t, "real-3.8.0-cons.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].SessionID == 0 || cs[0].Fields["to"] != "30000" || cs[1].SessionID != 0 {
		t.Errorf("3.8.0 cons: %+v", cs)
	}
	// A host name before the slash, and an empty cons (no clients but us).
	cs, err = ParseCons([]byte(" zkclient.example/192.0.2.7:1234[1](queued=0,recved=2,sent=2,sid=0xabc)\n\n"))
	if err != nil || len(cs) != 1 || cs[0].Addr.String() != "192.0.2.7:1234" || cs[0].Session() != "0xabc" {
		t.Errorf("hostname cons: %+v %v", cs, err)
	}
}

func TestParseMaps(t *testing.T) {
	env, err := ParseKV(readTestdata(t, "real-3.8.0-envi.txt"))
	if err != nil || !strings.HasPrefix(env["zookeeper.version"], "3.8.0") || env["java.version"] == "" {
		t.Errorf("envi: %v %v", env, err)
	}
	conf, err := ParseKV(readTestdata(t, "real-3.8.0-conf.txt"))
	if err != nil || conf["clientPort"] == "" || conf["maxClientCnxns"] != "60" {
		t.Errorf("conf: %v %v", conf, err)
	}
	conf, err = ParseKV(readTestdata(t, "3.6.3-conf-quorum.txt"))
	if err != nil || conf["server.1"] != "zk1:2888:3888:participant;0.0.0.0:2181" {
		t.Errorf("quorum conf: %v %v", conf, err)
	}
	m, err := ParseMntr(readTestdata(t, "real-3.8.0-mntr.txt"))
	if err != nil || m["zk_server_state"] != "standalone" || !strings.HasPrefix(m["zk_version"], "3.8.0") {
		t.Errorf("mntr: %v", err)
	}
	if err := ParseRuok(readTestdata(t, "real-3.8.0-ruok.txt")); err != nil {
		t.Errorf("ruok: %v", err)
	}
	if ro, err := ParseIsro(readTestdata(t, "real-3.8.0-isro.txt")); err != nil || ro {
		t.Errorf("isro: %v %v", ro, err)
	}
}

func TestParseHostile(t *testing.T) {
	srvr := string(readTestdata(t, "real-3.8.0-srvr.txt"))
	tests := []struct {
		name  string
		reply string
		want  error
	}{
		{"empty", "", ErrEmptyReply},
		{"refused", string(readTestdata(t, "real-3.8.0-stat-refused.txt")), ErrNotWhitelisted},
		{"binary", "\x00\x01\x02\xffZookeeper version: 3.4.6\n", ErrMalformed},
		{"invalid utf8", "Zookeeper version: \xff\xfe\n", ErrMalformed},
		{"truncated", srvr[:len(srvr)/2], ErrMalformed},
		{"no final newline", strings.TrimSuffix(srvr, "\n"), ErrMalformed},
		{"no version", "Mode: standalone\nNode count: 5\n", ErrMalformed},
		{"bad number", strings.Replace(srvr, "Received: ", "Received: x", 1), ErrMalformed},
		{"bad latency", strings.Replace(srvr, "17/17.0/17", "17/17.0", 1), ErrMalformed},
		{"html", "<html><body>hi</body></html>\n", ErrMalformed},
		{"not serving", "This ZooKeeper instance is not currently serving requests\n", ErrNotServing},
	}
	for _, tt := range tests {
		_, err := ParseStat([]byte(tt.reply))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := ParseCons([]byte(" /127.0.0.1:1[1](queued=0,recv")); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated cons: %v", err)
	}
	if _, err := ParseMntr([]byte("zk_version 3.4\n")); !errors.Is(err, ErrMalformed) {
		t.Errorf("mntr without tab: %v", err)
	}
	if err := ParseRuok([]byte("nope")); !errors.Is(err, ErrMalformed) {
		t.Errorf("ruok: %v", err)
	}
	if _, err := ParseIsro([]byte("maybe")); !errors.Is(err, ErrMalformed) {
		t.Errorf("isro: %v", err)
	}
}

func TestParseAdmin(t *testing.T) {
	for _, f := range []string{"admin-3.8.0-srvr.json", "admin-3.8.0-stat.json"} {
		s, err := ParseAdminStat(readTestdata(t, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if s.Version.Short() != "3.8.0" || s.Mode != "standalone" || s.NodeCount != 5 || s.Fingerprint() != "3.6+" || s.Received == 0 {
			t.Errorf("%s: %+v", f, s)
		}
	}
	cs, err := ParseAdminConnections(readTestdata(t, "admin-3.8.0-connections.json"))
	if err != nil || len(cs) != 1 {
		t.Fatalf("connections: %v %+v", err, cs)
	}
	// 72057649010966528 does not survive float64: the id must be exact.
	if cs[0].Session() != "0x100000ccca60000" || cs[0].Addr.String() != "127.0.0.1:52158" {
		t.Errorf("connections: %+v (session %s)", cs[0], cs[0].Session())
	}
	env, err := ParseAdminMap(readTestdata(t, "admin-3.8.0-environment.json"))
	if err != nil || !strings.HasPrefix(env["zookeeper.version"], "3.8.0") || env["command"] != "" {
		t.Errorf("environment: %v %v", env, err)
	}
	mon, err := ParseAdminMap(readTestdata(t, "admin-3.8.0-monitor.json"))
	if err != nil || mon["server_state"] != "standalone" {
		t.Errorf("monitor: %v", err)
	}
	for _, bad := range []string{"", "null", "[]", "{", `{"error":"boom"}`, `{"version":3}`, `{"version":"3.8.0"}`,
		`{"connections":[1]}`, `{"connections":[{"remote_socket_address":"nope"}]}`} {
		_, err1 := ParseAdminStat([]byte(bad))
		_, err2 := ParseAdminConnections([]byte(bad))
		if err1 == nil && err2 == nil {
			t.Errorf("admin %q parsed", bad)
		}
	}
}
