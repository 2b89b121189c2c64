package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/rstwatch/rstwatch/zk"
)

// Field names below were read from a real ZooKeeper 3.8.0 AdminServer
// (see testdata/admin-3.8.0-*.json).

// ParseAdminStat parses the srvr/stat/server_stats commands.
func ParseAdminStat(body []byte) (*ServerStats, error) {
	m, err := decodeAdmin(body)
	if err != nil {
		return nil, err
	}
	raw, ok := m["version"].(string)
	if !ok {
		return nil, fmt.Errorf("%w: AdminServer stat has no \"version\"", ErrMalformed)
	}
	s := &ServerStats{}
	s.Version, err = zk.ParseVersion(raw)
	s.Version.Raw = raw
	if err != nil {
		s.VersionErr = err.Error()
	}
	ss, ok := m["server_stats"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: AdminServer stat has no \"server_stats\" object", ErrMalformed)
	}
	s.Mode, _ = ss["server_state"].(string)
	s.Received = jsonInt(ss["packets_received"])
	s.Sent = jsonInt(ss["packets_sent"])
	s.Connections = jsonInt(ss["num_alive_client_connections"])
	s.Outstanding = jsonInt(ss["outstanding_requests"])
	s.Zxid = uint64(jsonInt(ss["last_processed_zxid"]))
	s.LatencyMin = jsonInt(ss["min_latency"])
	s.LatencyMax = jsonInt(ss["max_latency"])
	if n, ok := ss["avg_latency"].(json.Number); ok {
		s.LatencyAvg, _ = n.Float64()
		s.AvgDecimal = strings.Contains(n.String(), ".")
		s.extra(latencyKey, fmt.Sprintf("%d/%s/%d", s.LatencyMin, n, s.LatencyMax))
	}
	s.NodeCount = jsonInt(m["node_count"])
	if conns, ok := m["connections"].([]any); ok {
		s.Clients, err = adminConns(conns)
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ParseAdminConnections parses the connections (cons) command.
func ParseAdminConnections(body []byte) ([]ClientConn, error) {
	m, err := decodeAdmin(body)
	if err != nil {
		return nil, err
	}
	var out []ClientConn
	for _, key := range []string{"connections", "secure_connections"} {
		list, ok := m[key].([]any)
		if !ok {
			if key == "connections" {
				return nil, fmt.Errorf("%w: AdminServer connections has no \"connections\" list", ErrMalformed)
			}
			continue
		}
		cs, err := adminConns(list)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
	}
	return out, nil
}

func adminConns(list []any) ([]ClientConn, error) {
	out := make([]ClientConn, 0, len(list))
	for _, item := range list {
		o, ok := item.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: AdminServer connection is not an object", ErrMalformed)
		}
		raw, _ := o["remote_socket_address"].(string)
		addr := raw
		if i := strings.LastIndexByte(addr, '/'); i >= 0 {
			addr = addr[i+1:]
		}
		ap, ok := parseJavaAddr(addr)
		if !ok {
			return nil, fmt.Errorf("%w: AdminServer connection address %q", ErrMalformed, clip(raw))
		}
		c := ClientConn{
			Addr:     ap,
			Raw:      raw,
			Interest: int(jsonInt(o["interest_ops"])),
			Queued:   jsonInt(o["outstanding_requests"]),
			Received: jsonInt(o["packets_received"]),
			Sent:     jsonInt(o["packets_sent"]),
			Fields:   map[string]string{},
		}
		if n, ok := o["session_id"].(json.Number); ok {
			c.SessionID, _ = strconv.ParseUint(n.String(), 10, 64)
			if c.SessionID == 0 {
				// Negative ids do not exist, but keep the bits if one shows up.
				if v, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
					c.SessionID = uint64(v)
				}
			}
		}
		for k, v := range o {
			c.Fields[k] = scalarString(v)
		}
		out = append(out, c)
	}
	return out, nil
}

// ParseAdminMap flattens environment/monitor/configuration/is_read_only into
// key → string, dropping the "command" and "error" bookkeeping keys.
func ParseAdminMap(body []byte) (map[string]string, error) {
	m, err := decodeAdmin(body)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k == "command" || k == "error" {
			continue
		}
		out[k] = scalarString(v)
	}
	return out, nil
}

func jsonInt(v any) int64 {
	n, ok := v.(json.Number)
	if !ok {
		return 0
	}
	if i, err := n.Int64(); err == nil {
		return i
	}
	f, _ := n.Float64()
	return int64(f)
}

func scalarString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case json.Number:
		return t.String()
	case bool:
		return strconv.FormatBool(t)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
