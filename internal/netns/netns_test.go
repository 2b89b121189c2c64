package netns

import (
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/testenv"
)

const fibTrie = `Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
           |-- 192.0.2.2
              /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 127.0.0.1
              /32 host LOCAL
           |-- 192.0.2.2
              /32 host LOCAL
`

func TestParseFibTrieLocal(t *testing.T) {
	got := parseFibTrieLocal([]byte(fibTrie))
	want := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.2")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParseIfInet6(t *testing.T) {
	got := parseIfInet6([]byte("fd000000000000000000000000000002 04 40 00 82     eth0\n00000000000000000000000000000001 01 80 10 80       lo\nbad\n"))
	want := []netip.Addr{netip.MustParseAddr("fd00::2"), netip.MustParseAddr("::1")}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A namespace kept only by `ip netns add` is read by entering it; one with
// a process in it, through the process.
func TestReadFileByMountAndByProcess(t *testing.T) {
	testenv.RequireBPF(t) // root: setns needs CAP_SYS_ADMIN
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is needed")
	}
	name := "rstwnsix" + strconv.Itoa(os.Getpid()%100000)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "addr", "add", "198.51.100.7/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add: %v: %s", err, out)
	}
	exec.Command("ip", "-n", name, "link", "set", "lo", "up").Run()
	ino, ok := nsInode("/run/netns/" + name)
	if !ok {
		t.Fatal("no inode for the new namespace")
	}
	ix := New()
	addrs, err := ix.LocalAddrs(ino)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(addrs, netip.MustParseAddr("198.51.100.7")) {
		t.Fatalf("addresses of the mounted namespace: %v, want 198.51.100.7 among them", addrs)
	}
	if !slices.Contains(ix.Inodes(0), ino) {
		t.Fatalf("inode %d not listed", ino)
	}

	// Now with a process in it (and without the mount).
	cmd := exec.Command("ip", "netns", "exec", name, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ix2 := NewAt("/proc", t.TempDir())
	for i := 0; i < 100; i++ { // until the child has entered the namespace
		if got, _ := nsInode("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"); got == ino {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	snmp, err := ix2.ReadFile(ino, "snmp")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(snmp), "OutRsts") {
		t.Fatalf("snmp: %q", snmp)
	}
	self, err := Self()
	if err != nil || self == ino {
		t.Fatalf("Self() = %d, %v", self, err)
	}
}
