package metrics

import (
	"context"
	"net/netip"
	"time"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/tracer"
	"github.com/rstwatch/rstwatch/zk"
)

// ZK is what serve needs from the ZooKeeper side. *zk.Enricher has it; a
// nil ZK gives every ZooKeeper row the verdict UNKNOWN and no zk_* series.
type ZK interface {
	// Enrich fills ev.ZK and ev.Verdict when ev touched ZooKeeper.
	Enrich(ctx context.Context, ev *event.Event) bool
	// Servers is what is known of each probed server.
	Servers() []zk.ServerInfo
	// ErrorCounts is failed probes per endpoint since start.
	ErrorCounts() map[string]uint64
}

// verdictOf judges a kernel row as if it were one of its resets. The row
// keeps the ZooKeeper endpoint but not which side this host was, so the
// endpoint is taken as the remote end (this host the client) first. When the
// owner is the server itself, its "client library" is the server's own jar
// and the verdict follows the server version, which is what the operator's
// rule asks for anyway.
func verdictOf(ctx context.Context, z ZK, c *tracer.Count) string {
	if z == nil {
		return event.VerdictUnknown
	}
	var local netip.AddrPort
	if c.ZKEndpoint.Addr().Is4() {
		local = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	} else {
		local = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	}
	ev := event.Event{
		Time:      time.Now(),
		Direction: c.Direction,
		Local:     local,
		Remote:    c.ZKEndpoint,
		Reason:    c.Reason,
	}
	if c.OwnerPID != 0 {
		ev.Owner = &event.Owner{PID: c.OwnerPID, Comm: c.OwnerComm, Alive: true, Source: c.OwnerSource}
	}
	if !z.Enrich(ctx, &ev) {
		// Servers found on this host are matched by their local port only:
		// try this host as the server.
		ev.Local, ev.Remote = c.ZKEndpoint, local
		z.Enrich(ctx, &ev)
	}
	if ev.Verdict == nil {
		return event.VerdictUnknown
	}
	return ev.Verdict.Code
}
