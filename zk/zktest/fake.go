package zktest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Handler scripts a fake server's answer to one connection. word is what
// the client sent first (up to 4 bytes, read with a short deadline); the
// handler writes whatever it likes. The connection is closed after it
// returns, unless the handler already did.
type Handler func(word string, c net.Conn)

// Fake is a scripted four-letter-word server on 127.0.0.1.
type Fake struct {
	Addr string

	active sync.WaitGroup // handlers running

	mu    sync.Mutex
	words []string
	extra [][]byte // bytes sent after the 4-byte word, per connection
}

// ServeFake starts a fake server handling every connection with h, stopped
// in t.Cleanup (open connections included).
func ServeFake(t testing.TB, h Handler) *Fake {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fake ZooKeeper listen: %v", err)
	}
	f := &Fake{Addr: l.Addr().String()}
	var wg sync.WaitGroup
	var cmu sync.Mutex
	conns := map[net.Conn]struct{}{}
	t.Cleanup(func() {
		l.Close()
		cmu.Lock()
		for c := range conns {
			c.Close()
		}
		cmu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			cmu.Lock()
			conns[c] = struct{}{}
			cmu.Unlock()
			wg.Add(1)
			f.active.Add(1)
			go func() {
				defer wg.Done()
				defer f.active.Done()
				defer func() {
					cmu.Lock()
					delete(conns, c)
					cmu.Unlock()
				}()
				f.handle(c, h)
			}()
		}
	}()
	return f
}

func (f *Fake) handle(c net.Conn, h Handler) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	n, _ := io.ReadFull(c, buf)
	word := string(buf[:n])
	c.SetReadDeadline(time.Time{})
	f.mu.Lock()
	f.words = append(f.words, word)
	f.mu.Unlock()
	h(word, c)
	// Like a real server, answer then close; but first half-close and
	// collect anything else the client sent, so tests can check that the
	// client sent exactly the 4 bytes (more would make a real server reset).
	if tc, ok := c.(*net.TCPConn); ok {
		if tc.CloseWrite() == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			rest, _ := io.ReadAll(io.LimitReader(c, 1<<16))
			if len(rest) > 0 {
				f.mu.Lock()
				f.extra = append(f.extra, rest)
				f.mu.Unlock()
			}
		}
	}
}

// Words returns the words received so far, in order.
func (f *Fake) Words() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.words...)
}

// Extra returns bytes clients sent after their 4-byte word (should be
// none). It first waits (up to 5 s) for running handlers, which finish
// once their client has closed.
func (f *Fake) Extra() [][]byte {
	done := make(chan struct{})
	go func() { f.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]byte(nil), f.extra...)
}

// Replies answers each word with its text; unknown words get nothing, like
// a real server.
func Replies(m map[string]string) Handler {
	return func(word string, c net.Conn) {
		if r, ok := m[word]; ok {
			io.WriteString(c, r)
		}
	}
}

// Silent accepts and never answers, like a hung server: it does not even
// notice the client's half-close, until the client gives up or the fake is
// stopped (at most 30 s).
func Silent(word string, c net.Conn) {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	io.Copy(io.Discard, c)
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c.SetReadDeadline(time.Time{}) != nil {
			return // closed by the fake's cleanup
		}
	}
}

// Endless answers with an endless stream of text.
func Endless(word string, c net.Conn) {
	line := []byte("zk_endless\t0\n")
	for {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(line); err != nil {
			return
		}
	}
}

// Abort answers with prefix and then resets the connection (SO_LINGER 0),
// like a server killed mid-reply.
func Abort(prefix string) Handler {
	return func(word string, c net.Conn) {
		io.WriteString(c, prefix)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
}

// CloseAtOnce closes without answering.
func CloseAtOnce(word string, c net.Conn) { c.Close() }
