package wire

import (
	"bufio"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rstwatch/rstwatch/zk"
)

const (
	whitelistRefusal = "is not executed because it is not in the whitelist"
	notServing       = "This ZooKeeper instance is not currently serving requests"
)

// checkText rejects replies that cannot be a four-letter word answer, and
// recognises the two canned answers every word may get.
func checkText(reply []byte) error {
	if len(reply) == 0 {
		return ErrEmptyReply
	}
	if !utf8.Valid(reply) {
		return fmt.Errorf("%w: binary data (not UTF-8)", ErrMalformed)
	}
	for _, b := range reply {
		if b < 0x20 && b != '\n' && b != '\r' && b != '\t' {
			return fmt.Errorf("%w: binary data (control byte 0x%02x)", ErrMalformed, b)
		}
	}
	s := string(reply)
	if t := strings.TrimSpace(s); len(t) < 100 && strings.Contains(t, whitelistRefusal) {
		return ErrNotWhitelisted
	}
	if strings.HasPrefix(s, notServing) {
		return fmt.Errorf("%w: %s", ErrNotServing, strings.TrimSpace(s))
	}
	return nil
}

// ParseStat parses a srvr or stat reply, in every format from 3.4 to 3.9.
func ParseStat(reply []byte) (*ServerStats, error) {
	if err := checkText(reply); err != nil {
		return nil, err
	}
	s := &ServerStats{}
	var haveVersion, haveMode, haveNodes, inClients bool
	sc := bufio.NewScanner(strings.NewReader(string(reply)))
	sc.Buffer(make([]byte, 0, 4096), len(reply)+1)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if inClients {
			if strings.TrimSpace(line) == "" {
				inClients = false
				continue
			}
			c, err := parseClientLine(line)
			if err != nil {
				return nil, err
			}
			s.Clients = append(s.Clients, c)
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			if strings.TrimSpace(line) == "" {
				continue
			}
			return nil, fmt.Errorf("%w: unexpected line %q", ErrMalformed, clip(line))
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Zookeeper version":
			haveVersion = true
			s.Version, err = zk.ParseVersion(val)
			s.Version.Raw = val
			if err != nil {
				s.VersionErr = err.Error()
				err = nil
			}
		case "Clients":
			inClients = true
		case latencyKey:
			err = s.parseLatency(val)
		case "Received":
			s.Received, err = parseInt(key, val)
		case "Sent":
			s.Sent, err = parseInt(key, val)
		case "Connections":
			s.Connections, err = parseInt(key, val)
		case "Outstanding":
			s.Outstanding, err = parseInt(key, val)
		case "Zxid":
			s.Zxid, err = parseHex(key, val)
		case "Mode":
			haveMode, s.Mode = true, val
		case "Node count":
			haveNodes = true
			s.NodeCount, err = parseInt(key, val)
		default:
			s.extra(key, val)
		}
		if err != nil {
			return nil, err
		}
	}
	switch {
	case !haveVersion:
		return nil, fmt.Errorf("%w: no \"Zookeeper version:\" line", ErrMalformed)
	case !haveMode || !haveNodes || reply[len(reply)-1] != '\n':
		return nil, fmt.Errorf("%w: truncated (no \"Mode:\"/\"Node count:\" line or no final newline)", ErrMalformed)
	}
	return s, nil
}

func (s *ServerStats) extra(k, v string) {
	if s.Extra == nil {
		s.Extra = map[string]string{}
	}
	s.Extra[k] = v
}

func (s *ServerStats) parseLatency(val string) error {
	f := strings.Split(val, "/")
	if len(f) != 3 {
		return fmt.Errorf("%w: latency %q: want min/avg/max", ErrMalformed, val)
	}
	var err error
	if s.LatencyMin, err = parseInt("latency min", f[0]); err != nil {
		return err
	}
	if s.LatencyMax, err = parseInt("latency max", f[2]); err != nil {
		return err
	}
	s.AvgDecimal = strings.Contains(f[1], ".")
	if s.LatencyAvg, err = strconv.ParseFloat(f[1], 64); err != nil {
		return fmt.Errorf("%w: latency avg %q", ErrMalformed, f[1])
	}
	s.extra(latencyKey, val)
	return nil
}

// ParseCons parses a cons reply: one client per line, then a blank line.
func ParseCons(reply []byte) ([]ClientConn, error) {
	if err := checkText(reply); err != nil {
		return nil, err
	}
	var out []ClientConn
	for _, line := range strings.Split(string(reply), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		c, err := parseClientLine(line)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// parseClientLine parses " /127.0.0.1:40616[1](queued=0,recved=1,sent=1,sid=0x1…,…)".
// Java prints IPv6 without brackets ("/0:0:0:0:0:0:0:1:40616") and may put
// a host name before the slash.
func parseClientLine(line string) (ClientConn, error) {
	bad := func(why string) (ClientConn, error) {
		return ClientConn{}, fmt.Errorf("%w: client line %q: %s", ErrMalformed, clip(line), why)
	}
	line = strings.TrimSpace(line)
	open := strings.IndexByte(line, '[')
	if open < 0 {
		return bad("no [interest]")
	}
	c := ClientConn{Raw: line[:open]}
	closeB := strings.IndexByte(line[open:], ']')
	if closeB < 0 {
		return bad("no ]")
	}
	n, err := strconv.Atoi(line[open+1 : open+closeB])
	if err != nil {
		return bad("interest is not a number")
	}
	c.Interest = n
	rest := line[open+closeB+1:]
	if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
		return bad("counters not in (…)")
	}
	addr := c.Raw
	if i := strings.LastIndexByte(addr, '/'); i >= 0 {
		addr = addr[i+1:]
	}
	if ap, ok := parseJavaAddr(addr); ok {
		c.Addr = ap
	} else {
		return bad("address is not ip:port")
	}
	c.Fields = map[string]string{}
	for _, kv := range strings.Split(rest[1:len(rest)-1], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		c.Fields[k] = v
		switch k {
		case "queued":
			c.Queued, err = parseInt(k, v)
		case "recved":
			c.Received, err = parseInt(k, v)
		case "sent":
			c.Sent, err = parseInt(k, v)
		case "sid":
			c.SessionID, err = parseHex(k, v)
		}
		if err != nil {
			return ClientConn{}, fmt.Errorf("client line %q: %w", clip(line), err)
		}
	}
	return c, nil
}

// parseJavaAddr parses "1.2.3.4:5" and Java's bracketless IPv6 "::1:5".
func parseJavaAddr(s string) (netip.AddrPort, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, true
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	ip, err := netip.ParseAddr(strings.Trim(s[:i], "[]"))
	if err != nil {
		return netip.AddrPort{}, false
	}
	port, err := strconv.ParseUint(s[i+1:], 10, 16)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), true
}

// ParseKV parses envi ("Environment:" then key=value) and conf (key=value)
// replies. Values may contain '='; lines without one (conf's
// "membership:" header) are skipped.
func ParseKV(reply []byte) (map[string]string, error) {
	if err := checkText(reply); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(reply), "\n") {
		line = strings.TrimRight(line, "\r")
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			continue
		}
		m[k] = v
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: no key=value line", ErrMalformed)
	}
	return m, nil
}

// ParseMntr parses a mntr reply: "key<TAB>value" per line.
func ParseMntr(reply []byte) (map[string]string, error) {
	if err := checkText(reply); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(reply), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "\t")
		if !ok {
			return nil, fmt.Errorf("%w: mntr line %q has no tab", ErrMalformed, clip(line))
		}
		m[k] = v
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: no metric", ErrMalformed)
	}
	return m, nil
}

// ParseRuok checks a ruok reply ("imok").
func ParseRuok(reply []byte) error {
	if err := checkText(reply); err != nil {
		return err
	}
	if strings.TrimSpace(string(reply)) != "imok" {
		return fmt.Errorf("%w: ruok answered %q, not imok", ErrMalformed, clip(string(reply)))
	}
	return nil
}

// ParseIsro parses an isro reply: "rw" or "ro" (no newline). It returns
// whether the server is read-only.
func ParseIsro(reply []byte) (bool, error) {
	if err := checkText(reply); err != nil {
		return false, err
	}
	switch strings.TrimSpace(string(reply)) {
	case "ro":
		return true, nil
	case "rw":
		return false, nil
	}
	return false, fmt.Errorf("%w: isro answered %q, want rw or ro", ErrMalformed, clip(string(reply)))
}

func parseInt(what, s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not an integer", ErrMalformed, what, clip(s))
	}
	return n, nil
}

func parseHex(what, s string) (uint64, error) {
	s = strings.TrimSpace(s)
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		h = s
	}
	n, err := strconv.ParseUint(h, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not hex", ErrMalformed, what, clip(s))
	}
	return n, nil
}

// clip keeps error messages short when a reply is garbage.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
