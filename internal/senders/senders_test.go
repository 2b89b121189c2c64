package senders

import (
	"net/netip"
	"testing"
	"time"
)

const procTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2382 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 86599 1 00000000024d5831 100 0 0 10 0
   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 000000009f838d0d 100 0 0 10 0
   2: 0100007F:C351 0100007F:1F90 06 00000000:00000000 03:00000000 00000000     0        0 0 3 000000009f838d0d
`

const procTCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000100007F:C352 0000000000000000FFFF00000100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 20 4 30 10 -1
   1: B80D0120000000000000000002000000:1E61 B80D0120000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000     0        0 888 1 0000000000000000 20 4 30 10 -1
`

func TestFindSocket(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, c := range []struct {
		file          string
		local, remote string
		want          uint64
	}{
		{procTCP, "127.0.0.1:50000", "127.0.0.1:8080", 4242},
		{procTCP, "127.0.0.1:50001", "127.0.0.1:8080", 0},    // timewait: no inode
		{procTCP, "127.0.0.1:8080", "127.0.0.1:50000", 0},    // the other end is not this socket
		{procTCP6, "127.0.0.1:50002", "127.0.0.1:8080", 777}, // IPv4 on an IPv6 socket
		{procTCP6, "[2001:db8::2]:7777", "[2001:db8::1]:54321", 888},
	} {
		got, ok := findSocket([]byte(c.file), ap(c.local), ap(c.remote))
		if got != c.want || ok != (c.want != 0) {
			t.Errorf("%s -> %s: %d %v, want %d", c.local, c.remote, got, ok, c.want)
		}
	}
}

func TestRate(t *testing.T) {
	var r rate
	t0 := time.Unix(100, 0)
	for i := range 3 {
		if !r.allow(t0.Add(time.Duration(i)*time.Millisecond), 3) {
			t.Fatalf("call %d refused", i)
		}
	}
	if r.allow(t0.Add(500*time.Millisecond), 3) {
		t.Fatal("a fourth call within the second allowed")
	}
	if !r.allow(t0.Add(time.Second), 3) {
		t.Fatal("refused in the next second")
	}
}
