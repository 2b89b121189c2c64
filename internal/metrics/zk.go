package metrics

import (
	"context"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/tracer"
	"github.com/rstwatch/rstwatch/zk/diagnose"
	"github.com/rstwatch/rstwatch/zk/wire"
)

// ZK is what serve needs from the ZooKeeper side. *diagnose.Enricher has
// it; a nil ZK gives every ZooKeeper row the verdict UNKNOWN and no zk_*
// series.
type ZK interface {
	// CountVerdict is the verdict code of one kernel count, from the same
	// classification as trace's per-reset verdicts.
	CountVerdict(ctx context.Context, c diagnose.Count) string
	// IsRstwatch reports whether pid is an rstwatch process (comm is its
	// name, used when it has exited): its ZooKeeper connections are
	// probes, never findings.
	IsRstwatch(pid uint32, comm string) bool
	// Servers is what is known of each probed server.
	Servers() []wire.ServerInfo
	// ErrorCounts is failed probes per endpoint since start.
	ErrorCounts() map[string]uint64
}

// verdictOf judges a kernel row with the diagnosis every output uses.
func verdictOf(ctx context.Context, z ZK, c *tracer.Count) string {
	if z == nil {
		return event.VerdictUnknown
	}
	return z.CountVerdict(ctx, diagnose.Count{
		Direction: c.Direction, Reason: c.Reason, State: c.State, OwnerPID: c.OwnerPID, OwnerComm: c.OwnerComm,
		OwnerSource: c.OwnerSource, Endpoint: c.ZKEndpoint,
	})
}

// ownProbe reports whether a ZooKeeper row is owned by an rstwatch process
// (this one or another instance on the host): probes, not findings.
func ownProbe(z ZK, self uint32, c *tracer.Count) bool {
	if c.OwnerPID == 0 {
		return false
	}
	if self != 0 && c.OwnerPID == self {
		return true
	}
	return z != nil && z.IsRstwatch(c.OwnerPID, c.OwnerComm)
}
