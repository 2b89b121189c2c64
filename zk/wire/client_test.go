package wire

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/zk/zktest"
)

func TestClientFake34(t *testing.T) {
	f := fake34(t)
	c := &Client{Timeout: 2 * time.Second}
	ctx := context.Background()
	s, err := c.Srvr(ctx, f.Addr)
	if err != nil || s.Version.Short() != "3.4.6" || s.Mode != "follower" {
		t.Fatalf("srvr: %+v %v", s, err)
	}
	s, err = c.Stat(ctx, f.Addr)
	if err != nil || len(s.Clients) != 2 {
		t.Fatalf("stat: %+v %v", s, err)
	}
	cs, err := c.Cons(ctx, f.Addr)
	if err != nil || cs[0].Session() != "0x14a4a8e1e3b0001" {
		t.Fatalf("cons: %+v %v", cs, err)
	}
	if env, err := c.Envi(ctx, f.Addr); err != nil || env["host.name"] != "zk1" {
		t.Errorf("envi: %v %v", env, err)
	}
	if m, err := c.Mntr(ctx, f.Addr); err != nil || m["zk_server_state"] != "follower" {
		t.Errorf("mntr: %v %v", m, err)
	}
	if m, err := c.Conf(ctx, f.Addr); err != nil || m["clientPort"] != "2181" {
		t.Errorf("conf: %v %v", m, err)
	}
	if err := c.Ruok(ctx, f.Addr); err != nil {
		t.Errorf("ruok: %v", err)
	}
	if ro, err := c.Isro(ctx, f.Addr); err != nil || ro {
		t.Errorf("isro: %v %v", ro, err)
	}
	// Exactly the four bytes, never a newline: extra bytes would sit unread
	// on a real server, which then resets the connection.
	for _, w := range f.Words() {
		if len(w) != 4 || strings.ContainsAny(w, "\r\n") {
			t.Errorf("sent word %q", w)
		}
	}
	if extra := f.Extra(); len(extra) != 0 {
		t.Errorf("client sent bytes after the word: %q", extra)
	}
}

func TestClientWhitelistRefused(t *testing.T) {
	f := fake353(t)
	c := &Client{Timeout: 2 * time.Second}
	if _, err := c.Srvr(context.Background(), f.Addr); err != nil {
		t.Fatalf("srvr: %v", err)
	}
	_, err := c.Stat(context.Background(), f.Addr)
	var we *WordError
	if !errors.Is(err, ErrNotWhitelisted) || !errors.As(err, &we) || we.Word != "stat" || we.Endpoint != f.Addr {
		t.Fatalf("stat on 3.5.3 default whitelist: %v", err)
	}
}

func TestWordSafety(t *testing.T) {
	for _, w := range []string{"kill", "srst", "crst", "dump", "wchc", "wchp", "wchs", "stmk", "gtmk", "srvr\n", "", "SRVR"} {
		if _, err := ParseWord(w); err == nil {
			t.Errorf("ParseWord(%q) accepted", w)
		}
	}
	for _, w := range SafeWords() {
		if got, err := ParseWord(w.String()); err != nil || got != w {
			t.Errorf("ParseWord(%q) = %v, %v", w, got, err)
		}
	}
	_, err := (&Client{}).Raw(context.Background(), "127.0.0.1:1", Word{})
	if !errors.Is(err, ErrInvalidWord) {
		t.Errorf("zero word: %v", err)
	}
}

// Each hostile server must give a clear error naming endpoint and word,
// within the timeout.
func TestClientHostileServers(t *testing.T) {
	const timeout = 700 * time.Millisecond
	srvr := string(readTestdata(t, "real-3.8.0-srvr.txt"))
	tests := []struct {
		name    string
		handler zktest.Handler
		want    error  // errors.Is target, or nil to check text
		text    string // substring of the error
	}{
		{"binary garbage", func(w string, c net.Conn) { c.Write([]byte{0, 1, 2, 0xff, 0xfe, 0x80, 0}) }, ErrMalformed, "binary"},
		{"truncated", zktest.Replies(map[string]string{"srvr": srvr[:40]}), ErrMalformed, "truncated"},
		{"endless", zktest.Endless, ErrReplyTooLarge, "size cap"},
		{"silent", zktest.Silent, context.DeadlineExceeded, "no complete reply"},
		{"closes at once", zktest.CloseAtOnce, ErrEmptyReply, "empty reply"},
		{"unknown word", zktest.Replies(nil), ErrEmptyReply, "empty reply"},
		{"killed mid-reply", zktest.Abort(srvr[:30]), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := zktest.ServeFake(t, tt.handler)
			c := &Client{Timeout: timeout, MaxReply: 64 << 10}
			start := time.Now()
			_, err := c.Srvr(context.Background(), f.Addr)
			took := time.Since(start)
			if err == nil {
				t.Fatal("no error")
			}
			if took > timeout+500*time.Millisecond {
				t.Errorf("took %v, timeout %v", took, timeout)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), f.Addr) || !strings.Contains(err.Error(), "srvr") || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not name endpoint, word and %q", err, tt.text)
			}
		})
	}
}

func TestClientDialFailureAndCancel(t *testing.T) {
	port, _ := zktest.FreePort()
	addr := "127.0.0.1:" + itoa(port)
	_, err := (&Client{Timeout: time.Second}).Srvr(context.Background(), addr)
	if err == nil || !strings.Contains(err.Error(), "dial") || !strings.Contains(err.Error(), addr) {
		t.Errorf("dial refused: %v", err)
	}
	f := zktest.ServeFake(t, zktest.Silent)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err = (&Client{Timeout: 10 * time.Second}).Srvr(ctx, f.Addr)
	if err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("cancel: %v after %v", err, time.Since(start))
	}
}
