package kallsyms

import (
	"os"
	"strings"
	"testing"
)

const sample = `ffffffff81000000 T _stext
ffffffff81f81c50 T nf_hook_slow
ffffffff81f81d00 t nf_hook_slow_list
ffffffff81f81e00 D some_data
ffffffff820ef460 T nf_send_reset
ffffffffa0001000 t nft_reject_inet_eval	[nft_reject_inet]
`

func TestName(t *testing.T) {
	tab, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[uint64]string{
		0xffffffff81f81c50:         "nf_hook_slow",
		0xffffffff81f81c50 + 67:    "nf_hook_slow",
		0xffffffff81f81d10:         "nf_hook_slow_list",
		0xffffffff820ef460 + 776:   "nf_send_reset",
		0xffffffffa0001000 + 303:   "nft_reject_inet_eval",
		0xffffffff80000000:         "",
		0xffffffffa0001000 + 1<<20: "",
	} {
		if got := tab.Name(addr); got != want {
			t.Errorf("Name(%#x) = %q, want %q", addr, got, want)
		}
	}
	if tab.Len() != 5 {
		t.Errorf("Len %d, want 5 (text symbols only)", tab.Len())
	}
}

func TestZeroAddresses(t *testing.T) {
	_, err := parse(strings.NewReader("0000000000000000 T nf_hook_slow\n0000000000000000 t x\n"))
	if err != errZeroAddrs {
		t.Fatalf("err %v, want %v", err, errZeroAddrs)
	}
}

// The running kernel's table names a function it certainly has.
func TestProcKallsyms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read kernel addresses")
	}
	tab, err := Load("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for i, n := range tab.names {
		if n == "tcp_v4_rcv" {
			found = tab.Name(tab.addrs[i]+1) == "tcp_v4_rcv"
		}
	}
	if !found {
		t.Fatal("tcp_v4_rcv not named")
	}
}
