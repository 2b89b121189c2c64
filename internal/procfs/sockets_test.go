package procfs

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestSocketInode(t *testing.T) {
	for in, want := range map[string]uint64{"socket:[12345]": 12345, "socket:[]": 0, "pipe:[7]": 0, "socket:[1": 0, "/dev/null": 0} {
		got, ok := socketInode(in)
		if got != want || ok != (want != 0) {
			t.Errorf("socketInode(%q) = %d, %v", in, got, ok)
		}
	}
}

// listenerInode opens a listener on loopback for the test and returns its
// socket's inode.
func listenerInode(t *testing.T) uint64 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// A socket this process holds is found under its own pid and name.
func TestLookupOwnSocket(t *testing.T) {
	ino := listenerInode(t)
	s := NewSockets("/proc")
	o, ok := s.Lookup(ino)
	if !ok || o.PID != uint32(os.Getpid()) || o.Comm != Comm("/proc", uint32(os.Getpid())) || o.Comm == "" {
		t.Fatalf("Lookup(%d) = %+v, %v", ino, o, ok)
	}
}

// Misses rescan at most once per second.
func TestLookupRateLimitsRescans(t *testing.T) {
	root := t.TempDir()
	mk := func(pid int, inode uint64) {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "comm"), []byte("proc"+strconv.Itoa(pid)+"\n"), 0o644)
		os.Symlink("socket:["+strconv.FormatUint(inode, 10)+"]", filepath.Join(dir, "fd", "3"))
	}
	mk(10, 100)
	now := time.Unix(1000, 0)
	s := &Sockets{root: root, minDelay: time.Second, now: func() time.Time { return now }}
	s.scan()
	if o, ok := s.Lookup(100); !ok || o.PID != 10 || o.Comm != "proc10" {
		t.Fatalf("Lookup(100) = %+v, %v", o, ok)
	}
	mk(11, 101)
	if _, ok := s.Lookup(101); ok {
		t.Fatal("rescanned within a second of the last scan")
	}
	now = now.Add(2 * time.Second)
	if o, ok := s.Lookup(101); !ok || o.PID != 11 {
		t.Fatalf("Lookup(101) after a second = %+v, %v", o, ok)
	}
}

func TestParseTCP(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0885 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:0885 01 00000000:00000000 00:00000000 00000000   107        0 31338 1 0000000000000000 100 0 0 10 0
   2: 0100007F:C351 0100007F:1F90 06 00000000:00000000 03:00000000 00000000     0        0 0 3 000000009f838d0d
`)
	e := ParseTCP(table)
	if len(e) != 3 || e[0].State != TCPListen || e[0].Local.String() != "127.0.0.1:2181" || e[0].Inode != 31337 ||
		e[1].Local.String() != "127.0.0.1:41394" || e[1].Remote.String() != "127.0.0.1:2181" || e[1].State != 1 || e[1].Inode != 31338 ||
		e[2].State != 6 || e[2].Inode != 0 {
		t.Errorf("v4: %+v", e)
	}
	v6 := []byte("hdr\n 0: 00000000000000000000000001000000:0885 0000000000000000FFFF00000100007F:A1B2 01 0:0 0:0 0 0 0 4242 1\n" +
		" 1: B80D0120000000000000000002000000:1E61 B80D0120000000000000000001000000:D431 01 0:0 0:0 0 0 0 888 1\n")
	e = ParseTCP(v6)
	if len(e) != 2 || e[0].Local.String() != "[::1]:2181" || e[0].Remote.String() != "127.0.0.1:41394" ||
		e[1].Local.String() != "[2001:db8::2]:7777" || e[1].Remote.String() != "[2001:db8::1]:54321" || e[1].Inode != 888 {
		t.Errorf("v6: %+v", e)
	}
	if e := ParseTCP([]byte("garbage\n0: zz 1 2 3 4 5 6 7 8 9")); e != nil {
		t.Errorf("garbage: %+v", e)
	}
}

// WalkSockets and Holds find this test's own socket.
func TestWalkSocketsSelf(t *testing.T) {
	ino := listenerInode(t)
	self := uint32(os.Getpid())
	found := false
	WalkSockets("/proc", func(pid uint32, inode uint64) bool {
		if inode == ino {
			found = found || pid == self
		}
		return true
	})
	if !found {
		t.Errorf("WalkSockets did not find socket %d in pid %d", ino, self)
	}
	if !Holds("/proc", self, ino) || Holds("/proc", self, ino+1<<40) {
		t.Errorf("Holds is wrong about socket %d", ino)
	}
}
