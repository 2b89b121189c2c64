package wire

import (
	"net/netip"
	"strconv"

	"github.com/rstwatch/rstwatch/zk"
)

// ServerStats is what srvr and stat (or the AdminServer's srvr/stat) say.
type ServerStats struct {
	Version     zk.Version // Version.Raw is the version line as printed
	VersionErr  string     // why Version could not be parsed, "" when it was
	LatencyMin  int64
	LatencyAvg  float64
	LatencyMax  int64
	AvgDecimal  bool // "0/7.0/13": the 3.6+ format
	Received    int64
	Sent        int64
	Connections int64
	Outstanding int64
	Zxid        uint64
	Mode        string // leader, follower, observer, standalone, read-only
	NodeCount   int64
	Clients     []ClientConn      // stat only
	Extra       map[string]string // lines this parser does not model
}

// Fingerprint guesses the release line from the latency format, useful when
// the version line is odd: "3.6+" (decimal average) or "3.4/3.5" (integer),
// "" when the reply had no latency line.
func (s *ServerStats) Fingerprint() string {
	if _, ok := s.Extra[latencyKey]; !ok {
		return ""
	}
	if s.AvgDecimal {
		return "3.6+"
	}
	return "3.4/3.5"
}

// latencyKey keeps the raw latency line in Extra so that Fingerprint knows
// the line was there even when every number is 0.
const latencyKey = "Latency min/avg/max"

// ClientConn is one line of stat's or cons's client list.
type ClientConn struct {
	Addr     netip.AddrPort // the client's address and port as the server sees it
	Raw      string         // the address as printed ("/127.0.0.1:40616")
	Interest int            // the [n] after the address (interest ops)
	Queued   int64
	Received int64
	Sent     int64
	// SessionID is 0 when the reply had no sid (stat, or a connection that
	// has not finished its handshake, like rstwatch's own probe).
	SessionID uint64
	Fields    map[string]string // every key=value as printed
}

// Session is the session id as ZooKeeper prints it ("0x100000755220000"),
// "" when unknown.
func (c ClientConn) Session() string {
	if c.SessionID == 0 {
		return ""
	}
	return "0x" + strconv.FormatUint(c.SessionID, 16)
}
