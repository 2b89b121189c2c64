package hostscan

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultAdminPort is the AdminServer's default port (admin.serverPort).
const DefaultAdminPort = 8080

// ZooConfig is what rstwatch needs from a zoo.cfg.
type ZooConfig struct {
	ClientPort        int    // 0 when unset
	ClientPortAddress string // "" when unset (all interfaces)
	SecureClientPort  int
	DataDir           string
	// Whitelist is 4lw.commands.whitelist split on commas; WhitelistSet
	// tells "unset" (3.5.3+ default: srvr only) from "set to nothing".
	Whitelist    []string
	WhitelistSet bool
	AdminEnabled bool   // admin.enableServer, default true
	AdminAddress string // admin.serverAddress, default 0.0.0.0
	AdminPort    int    // admin.serverPort, default 8080
	// DynamicConfigFile holds the server lines in 3.5+ reconfig setups.
	DynamicConfigFile string
	Servers           []QuorumServer
	Raw               map[string]string
}

// QuorumServer is one "server.N=host:quorumPort:electionPort[:role][;[clientAddr:]clientPort]".
type QuorumServer struct {
	ID           int
	Host         string
	QuorumPort   int
	ElectionPort int
	Role         string // participant or observer, "" when unsaid
	ClientAddr   string // "" when unsaid
	ClientPort   int    // 0 when unsaid
}

// ClientEndpoint is host:port of the member's client port, "" when the line
// does not say.
func (q QuorumServer) ClientEndpoint() string {
	if q.ClientPort == 0 {
		return ""
	}
	host := q.ClientAddr
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = q.Host
	}
	return net.JoinHostPort(host, strconv.Itoa(q.ClientPort))
}

// ParseZooCfg parses a zoo.cfg (a Java properties file) or a dynamic
// config file. Unknown keys are kept in Raw; bad server lines are errors.
func ParseZooCfg(data []byte) (*ZooConfig, error) {
	c := &ZooConfig{AdminEnabled: true, AdminAddress: "0.0.0.0", AdminPort: DefaultAdminPort, Raw: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var cont string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line, cont = cont+line, ""
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cont = strings.TrimSuffix(line, `\`)
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue // a bare key: legal in properties, meaningless here
		}
		key, val := strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		c.Raw[key] = val
		if err := c.set(key, val); err != nil {
			return nil, fmt.Errorf("zoo.cfg line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("zoo.cfg: %w", err)
	}
	return c, nil
}

func (c *ZooConfig) set(key, val string) error {
	port := func() (int, error) {
		p, err := strconv.Atoi(val)
		if err != nil || p < 0 || p > 65535 {
			return 0, fmt.Errorf("%s=%q is not a port", key, clip(val))
		}
		return p, nil
	}
	var err error
	switch {
	case key == "clientPort":
		c.ClientPort, err = port()
	case key == "clientPortAddress":
		c.ClientPortAddress = val
	case key == "secureClientPort":
		c.SecureClientPort, err = port()
	case key == "dataDir":
		c.DataDir = val
	case key == "dynamicConfigFile":
		c.DynamicConfigFile = val
	case key == "4lw.commands.whitelist":
		c.WhitelistSet = true
		c.Whitelist = nil
		for _, w := range strings.Split(val, ",") {
			if w = strings.TrimSpace(w); w != "" {
				c.Whitelist = append(c.Whitelist, w)
			}
		}
	case key == "admin.enableServer":
		c.AdminEnabled = !strings.EqualFold(val, "false")
	case key == "admin.serverAddress":
		c.AdminAddress = val
	case key == "admin.serverPort":
		c.AdminPort, err = port()
	case strings.HasPrefix(key, "server."):
		var q QuorumServer
		q, err = parseServerLine(key, val)
		if err == nil {
			c.Servers = append(c.Servers, q)
		}
	}
	return err
}

func parseServerLine(key, val string) (QuorumServer, error) {
	var q QuorumServer
	id, err := strconv.Atoi(strings.TrimPrefix(key, "server."))
	if err != nil {
		return q, fmt.Errorf("%s: id is not a number", clip(key))
	}
	q.ID = id
	quorum, client, hasClient := strings.Cut(val, ";")
	host, rest, err := splitHost(strings.TrimSpace(quorum))
	if err != nil {
		return q, fmt.Errorf("%s=%q: %w", key, clip(val), err)
	}
	q.Host = host
	parts := strings.Split(rest, ":")
	if len(parts) < 2 {
		return q, fmt.Errorf("%s=%q: want host:quorumPort:electionPort", key, clip(val))
	}
	if q.QuorumPort, err = atoiPort(parts[0]); err != nil {
		return q, fmt.Errorf("%s: quorum port: %w", key, err)
	}
	if q.ElectionPort, err = atoiPort(parts[1]); err != nil {
		return q, fmt.Errorf("%s: election port: %w", key, err)
	}
	if len(parts) > 2 {
		q.Role = parts[2]
	}
	if hasClient {
		client = strings.TrimSpace(client)
		if p, err := atoiPort(client); err == nil {
			q.ClientPort = p
		} else {
			h, ps, err := splitHost(client)
			if err != nil {
				return q, fmt.Errorf("%s: client address: %w", key, err)
			}
			if q.ClientPort, err = atoiPort(ps); err != nil {
				return q, fmt.Errorf("%s: client port: %w", key, err)
			}
			q.ClientAddr = h
		}
	}
	return q, nil
}

// splitHost splits "host:rest" or "[v6]:rest"; rest has no leading colon.
func splitHost(s string) (host, rest string, err error) {
	if strings.HasPrefix(s, "[") {
		i := strings.IndexByte(s, ']')
		if i < 0 {
			return "", "", fmt.Errorf("unclosed [ in %q", clip(s))
		}
		host, rest = s[1:i], strings.TrimPrefix(s[i+1:], ":")
		return host, rest, nil
	}
	host, rest, ok := strings.Cut(s, ":")
	if !ok || host == "" {
		return "", "", fmt.Errorf("want host:port in %q", clip(s))
	}
	return host, rest, nil
}

func atoiPort(s string) (int, error) {
	p, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("%q is not a port", clip(s))
	}
	return p, nil
}

// localHost turns a listen address into one to connect to on this host.
func localHost(addr string) string {
	switch addr {
	case "", "0.0.0.0", "::", "[::]":
		return "127.0.0.1"
	}
	return strings.Trim(addr, "[]")
}
