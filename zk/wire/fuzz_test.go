package wire

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// addTestdata seeds a fuzz corpus with every testdata file matching glob.
func addTestdata(f *testing.F, glob string) {
	files, _ := filepath.Glob(filepath.Join("testdata", glob))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	addTestdata(f, "*.txt")
	f.Add([]byte("Zookeeper version: 3.4.6\nLatency min/avg/max: 0/0/0\nMode: x\nNode count: 1\n"))
	f.Add([]byte("Zookeeper version: 3.4.6\nClients:\n /::1:1[1](sid=0x1)\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStat(b)
		if err == nil && (s == nil || s.Mode == "" && !bytes.Contains(b, []byte("Mode:"))) {
			t.Fatalf("ok without Mode: %q", b)
		}
		ParseCons(b)
		ParseKV(b)
		ParseMntr(b)
		ParseRuok(b)
		ParseIsro(b)
	})
}

func FuzzParseAdmin(f *testing.F) {
	addTestdata(f, "*.json")
	f.Add([]byte(`{"connections":[{"remote_socket_address":"/::1:5","session_id":-1}]}`))
	f.Add([]byte(`{"version":"3.5.0","server_stats":{"avg_latency":1e400}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseAdminStat(b)
		ParseAdminConnections(b)
		ParseAdminMap(b)
	})
}
