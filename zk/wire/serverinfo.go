package wire

import "time"

// Target is one ZooKeeper server to probe.
type Target struct {
	Client string // host:port of the client port
	Admin  string // host:port of the AdminServer, "" when unknown or disabled
}

// ServerInfo is the outcome of probing one server.
type ServerInfo struct {
	Endpoint  string    `json:"endpoint"`
	Admin     string    `json:"admin,omitempty"`
	ProbedAt  time.Time `json:"probed_at"`
	Reachable bool      `json:"reachable"`

	Version     string `json:"version,omitempty"` // raw, as printed
	Mode        string `json:"mode,omitempty"`
	Connections int64  `json:"connections"`
	// Fingerprint is the latency-format guess ("3.6+" or "3.4/3.5").
	Fingerprint string `json:"fingerprint,omitempty"`

	Stats       *ServerStats      `json:"-"`
	StatsSource string            `json:"stats_source,omitempty"` // "srvr on host:port" or "AdminServer <url>"
	Clients     []ClientConn      `json:"-"`
	Env         map[string]string `json:"-"`
	Mntr        map[string]string `json:"-"`
	Conf        map[string]string `json:"-"`
	Ruok        bool              `json:"ruok,omitempty"`

	Allowed []string `json:"allowed,omitempty"` // words the server answered
	Refused []string `json:"refused,omitempty"` // words refused by 4lw.commands.whitelist
	// AdminUsed lists the AdminServer URLs read instead of refused words.
	AdminUsed []string          `json:"admin_used,omitempty"`
	Errors    map[string]string `json:"errors,omitempty"` // word → error, for words that failed otherwise
	Err       string            `json:"error,omitempty"`  // why the server is unreachable or unusable
	// Cause is the error behind Err, for errors.Is.
	Cause error `json:"-"`
	// NotServing: it answered "This ZooKeeper instance is not currently
	// serving requests" (no quorum, or starting).
	NotServing bool `json:"not_serving,omitempty"`
}

// VersionSource says where Version came from, for verdict texts.
func (si *ServerInfo) VersionSource() string { return si.StatsSource }

// ZooKeeper reports whether the server answered as a ZooKeeper server
// does: a srvr/stat (or AdminServer) answer, a whitelist refusal, or
// "not currently serving requests".
func (si *ServerInfo) ZooKeeper() bool {
	return si.Stats != nil || len(si.Refused) > 0 || si.NotServing
}
