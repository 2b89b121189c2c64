package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultAdminPort is the AdminServer's default (admin.serverPort).
const DefaultAdminPort = 8080

// AdminClient reads the AdminServer (3.5.0+, Jetty): GET
// http://host:port/commands/<name>, JSON. The zero value is usable.
type AdminClient struct {
	Timeout time.Duration // whole request; DefaultTimeout if 0
	MaxBody int64         // DefaultMaxReply if 0
	Conns   *ProbeConns   // records own connections; may be nil
}

// URL is the address of one command.
func AdminURL(adminAddr, command string) string {
	return (&url.URL{Scheme: "http", Host: adminAddr, Path: "/commands/" + command}).String()
}

// Command fetches one command's JSON body.
func (a *AdminClient) Command(ctx context.Context, adminAddr, command string) ([]byte, error) {
	timeout, max := DefaultTimeout, int64(DefaultMaxReply)
	if a != nil && a.Timeout > 0 {
		timeout = a.Timeout
	}
	if a != nil && a.MaxBody > 0 {
		max = a.MaxBody
	}
	var conns *ProbeConns
	if a != nil {
		conns = a.Conns
	}
	fail := func(err error) ([]byte, error) {
		return nil, &WordError{Endpoint: adminAddr, Word: "admin:" + command, Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// One connection per request, closed by the server after the answer
	// (Connection: close), so no idle connection outlives the probe.
	tr := &http.Transport{
		DisableKeepAlives: true,
		Proxy:             nil, // loopback and named servers only, never via a proxy
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &trackedConn{Conn: c, closed: conns.track(c)}, nil
		},
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a redirect is not an AdminServer answer
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, AdminURL(adminAddr, command), nil)
	if err != nil {
		return fail(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, max+1))
	if n > max {
		return fail(fmt.Errorf("%w (%d bytes)", ErrReplyTooLarge, max))
	}
	if err != nil {
		return fail(fmt.Errorf("read body after %d bytes: %w", n, err))
	}
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("HTTP %s: %s", resp.Status, clip(strings.TrimSpace(buf.String()))))
	}
	return buf.Bytes(), nil
}

type trackedConn struct {
	net.Conn
	closed func()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.closed()
	return err
}

// decodeAdmin decodes an AdminServer answer keeping numbers exact: session
// ids are 64-bit and do not survive float64.
func decodeAdmin(body []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: AdminServer JSON: %v", ErrMalformed, err)
	}
	if m == nil {
		return nil, fmt.Errorf("%w: AdminServer JSON is not an object", ErrMalformed)
	}
	if e, ok := m["error"]; ok && e != nil {
		return nil, fmt.Errorf("AdminServer error: %v", e)
	}
	return m, nil
}
