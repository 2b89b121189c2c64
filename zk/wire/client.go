package wire

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// Defaults for one four-letter-word exchange.
const (
	DefaultTimeout  = 3 * time.Second
	DefaultMaxReply = 1 << 20
)

// Client sends four-letter words. The zero value is usable.
type Client struct {
	Timeout  time.Duration // dial + write + read, per word; DefaultTimeout if 0
	MaxReply int64         // reply size cap; DefaultMaxReply if 0
	Conns    *ProbeConns   // records own connections; may be nil
}

func (c *Client) timeout() time.Duration {
	if c == nil || c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c *Client) maxReply() int64 {
	if c == nil || c.MaxReply <= 0 {
		return DefaultMaxReply
	}
	return c.MaxReply
}

// Raw sends w to endpoint (host:port of the client port) and returns the
// whole reply. It writes exactly the four bytes (a trailing newline would
// sit unread on the server, which then resets the connection: the very
// thing rstwatch reports) and reads to EOF, so the server closes first and
// nobody has unread data. Errors are *WordError naming endpoint and word.
func (c *Client) Raw(ctx context.Context, endpoint string, w Word) ([]byte, error) {
	fail := func(err error) ([]byte, error) {
		return nil, &WordError{Endpoint: endpoint, Word: w.String(), Err: err}
	}
	if len(w.w) != 4 {
		return fail(ErrInvalidWord)
	}
	// The timeout actually in force: the caller's deadline may be sooner.
	limit := c.timeout()
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < limit {
		limit = max(time.Until(dl), 0)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	// The port is bound before connect and recorded, so that even a
	// refused probe (server down) is known as rstwatch's own.
	d := net.Dialer{Control: c.Conns.bindBeforeConnect}
	conn, err := d.DialContext(ctx, "tcp", endpoint)
	if err != nil {
		return fail(fmt.Errorf("dial: %w", err))
	}
	closed := c.Conns.track(conn)
	defer func() {
		conn.Close()
		closed()
	}()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return fail(fmt.Errorf("set deadline: %w", err))
	}
	// A caller's cancel must not wait for the deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write([]byte(w.w)); err != nil {
		return fail(fmt.Errorf("%w: write: %v", ErrNoReply, err))
	}
	// Half-close: a ZooKeeper server has read the word and answers
	// anyway; any other server that waits for the end of a request line
	// (an HTTP server) sees the end of the input and answers too, so it
	// is told apart instead of timing out.
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	max := c.maxReply()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(conn, max+1))
	switch {
	case n > max:
		return fail(fmt.Errorf("%w (%d bytes)", ErrReplyTooLarge, max))
	case errors.Is(err, os.ErrDeadlineExceeded), ctx.Err() != nil && err != nil:
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded // the socket deadline fired first
		}
		return fail(fmt.Errorf("%w: connected, but no complete reply within %v (got %d bytes): %w", ErrNoReply, limit.Round(time.Millisecond), n, cause))
	case err != nil:
		return fail(fmt.Errorf("%w: read after %d bytes: %w", ErrNoReply, n, err))
	}
	return buf.Bytes(), nil
}

// do sends w and parses the reply with parse, wrapping parse errors too.
func do[T any](ctx context.Context, c *Client, endpoint string, w Word, parse func([]byte) (T, error)) (T, error) {
	var zero T
	reply, err := c.Raw(ctx, endpoint, w)
	if err != nil {
		return zero, err
	}
	v, err := parse(reply)
	if err != nil {
		return zero, &WordError{Endpoint: endpoint, Word: w.String(), Err: err}
	}
	return v, nil
}

// Srvr asks for server details (the one word every 3.5.3+ server answers
// by default).
func (c *Client) Srvr(ctx context.Context, endpoint string) (*ServerStats, error) {
	return do(ctx, c, endpoint, Srvr(), ParseStat)
}

// Stat is Srvr plus the client list.
func (c *Client) Stat(ctx context.Context, endpoint string) (*ServerStats, error) {
	return do(ctx, c, endpoint, Stat(), ParseStat)
}

// Cons lists the connections with their session ids.
func (c *Client) Cons(ctx context.Context, endpoint string) ([]ClientConn, error) {
	return do(ctx, c, endpoint, Cons(), ParseCons)
}

// Envi returns the server's environment.
func (c *Client) Envi(ctx context.Context, endpoint string) (map[string]string, error) {
	return do(ctx, c, endpoint, Envi(), ParseKV)
}

// Conf returns the server's configuration.
func (c *Client) Conf(ctx context.Context, endpoint string) (map[string]string, error) {
	return do(ctx, c, endpoint, Conf(), ParseKV)
}

// Mntr returns the server's metrics.
func (c *Client) Mntr(ctx context.Context, endpoint string) (map[string]string, error) {
	return do(ctx, c, endpoint, Mntr(), ParseMntr)
}

// Ruok returns nil when the server answers imok.
func (c *Client) Ruok(ctx context.Context, endpoint string) error {
	_, err := do(ctx, c, endpoint, Ruok(), func(b []byte) (struct{}, error) { return struct{}{}, ParseRuok(b) })
	return err
}

// Isro reports whether the server is in read-only mode.
func (c *Client) Isro(ctx context.Context, endpoint string) (bool, error) {
	return do(ctx, c, endpoint, Isro(), ParseIsro)
}
