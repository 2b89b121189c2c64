package zktest

import (
	"bytes"
	"testing"
	"time"
)

func TestStartAndSession(t *testing.T) {
	s := Start(t, Options{Whitelist: "srvr,cons"})
	sess, err := OpenSession(s.ClientAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := FourLetter(s.ClientAddr, "cons", 5*time.Second)
	if err != nil || !bytes.Contains(cons, []byte("sid=0x")) {
		t.Errorf("cons: %q %v", cons, err)
	}
	sess.Close()
	stat, _ := FourLetter(s.ClientAddr, "stat", 5*time.Second)
	if !bytes.Contains(stat, []byte("not in the whitelist")) {
		t.Errorf("stat: %q", stat)
	}
	if s.AdminAddr != "" {
		t.Errorf("admin %q without Admin", s.AdminAddr)
	}
	s.Stop()
	s.Stop() // idempotent
	if _, err := FourLetter(s.ClientAddr, "srvr", time.Second); err == nil {
		t.Error("server still answering after Stop")
	}
}
