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

// A socket this process holds is found under its own pid and name.
func TestLookupOwnSocket(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	s := NewSockets("/proc")
	o, ok := s.Lookup(st.Ino)
	if !ok || o.PID != uint32(os.Getpid()) || o.Comm != Comm("/proc", uint32(os.Getpid())) || o.Comm == "" {
		t.Fatalf("Lookup(%d) = %+v, %v", st.Ino, o, ok)
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
