package metrics

import (
	"net/netip"

	"github.com/rstwatch/rstwatch/internal/event"
	"github.com/rstwatch/rstwatch/internal/workload"
	"github.com/rstwatch/rstwatch/tracer"
)

// Label values used when the kernel or the ZooKeeper side knows nothing.
const (
	unknownComm      = "unknown" // no owning process was ever known
	verdictNone      = "none"    // not a ZooKeeper connection
	directionUnknown = "unknown" // the kernel's overflow row
)

// rowKey identifies one kernel aggregate row.
type rowKey struct {
	overflow  bool
	direction event.Direction
	reason    string
	state     string
	pid       uint32
	comm      string
	source    event.OwnerSource
	cgroup    uint64
	netns     uint32
	zk        netip.AddrPort
}

// keyOf is the kernel row's whole key: rows that differ only by the TCP
// state, the owner's cgroup or the namespace are counted apart.
func keyOf(c *tracer.Count) rowKey {
	return rowKey{c.Overflow, c.Direction, c.Reason, c.State, c.OwnerPID, c.OwnerComm, c.OwnerSource, c.OwnerCgroup, c.NetNS, c.ZKEndpoint}
}

// series is one label set of rstwatch_resets_total.
type series struct {
	direction, reason, comm, zkEndpoint, verdict string
	workloadLabels
}

// workloadLabels name the owner's workload; "" when not known or not one.
type workloadLabels struct {
	namespace, pod, container, unit string
}

// workloadLabelsOf: namespace and pod of a Kubernetes pod; container is
// the container's name in its pod, else its short id; unit is the systemd
// unit of a cgroup that is not a container's (a container's scope is
// named after its id, which the container label already carries).
func workloadLabelsOf(w *event.Workload) workloadLabels {
	var l workloadLabels
	if w == nil {
		return l
	}
	if p := w.Pod; p != nil {
		l.namespace, l.pod, l.container = p.Namespace, p.Name, p.Container
	}
	if c := w.Container; c != nil {
		if l.container == "" {
			l.container = workload.ShortID(c.ID)
		}
	} else {
		l.unit = w.Unit
	}
	return l
}

// resets turns snapshots of the kernel's cumulative rows into monotonic
// counters with capped labels. Not safe for concurrent use.
type resets struct {
	limits     Limits
	comms      labelCap
	endpoints  labelCap
	namespaces labelCap
	pods       labelCap
	containers labelCap
	units      labelCap

	last         map[rowKey]uint64 // each row's value at the previous snapshot
	totals       map[series]uint64
	ownerUnknown uint64
	folded       map[string]uint64 // label → resets whose value went to Other
	self         uint64            // resets on rstwatch's own probe connections
	// sent is every reset sent, by network namespace, since start
	// (rstwatch's own probes included: the kernel counts them too).
	sent map[uint32]uint64
}

func newResets(l Limits) *resets {
	l = l.withDefaults()
	return &resets{
		limits: l, comms: newLabelCap(l.OwnerComms), endpoints: newLabelCap(l.ZKEndpoints),
		namespaces: newLabelCap(l.Namespaces), pods: newLabelCap(l.Pods),
		containers: newLabelCap(l.Containers), units: newLabelCap(l.Units),
		last: map[rowKey]uint64{}, totals: map[series]uint64{}, sent: map[uint32]uint64{},
		folded: map[string]uint64{"owner_comm": 0, "zk_endpoint": 0, "series": 0,
			"namespace": 0, "pod": 0, "container": 0, "unit": 0},
	}
}

// observe adds the growth of every row since the previous snapshot.
// verdict is asked only for ZooKeeper rows that grew (it may probe); self
// says whether a ZooKeeper row is rstwatch's own probe connection, which
// is counted apart rather than reported; workload (optional) names the
// owner's workload of a row that grew.
func (r *resets) observe(rows []tracer.Count, verdict func(*tracer.Count) string, self func(*tracer.Count) bool,
	workload func(*tracer.Count) *event.Workload) {
	for i := range rows {
		c := &rows[i]
		k := keyOf(c)
		prev, seen := r.last[k]
		r.last[k] = c.Count
		delta := c.Count - prev
		if seen && c.Count < prev {
			// The row was deleted and made again (a pid reused after we
			// forgot it): everything in it is new.
			delta = c.Count
		}
		if delta == 0 {
			continue
		}
		if c.Direction == event.Send {
			r.sent[c.NetNS] += delta
		}
		if c.ZKEndpoint.IsValid() && self != nil && self(c) {
			r.self += delta
			continue
		}
		var w *event.Workload
		if workload != nil && !c.Overflow && c.OwnerPID != 0 {
			w = workload(c)
		}
		r.add(r.seriesOf(c, verdict, w, delta), delta)
		if !c.Overflow && c.OwnerPID == 0 {
			r.ownerUnknown += delta
		}
	}
}

func (r *resets) seriesOf(c *tracer.Count, verdict func(*tracer.Count) string, w *event.Workload, delta uint64) series {
	if c.Overflow {
		return series{directionUnknown, "UNKNOWN", Other, "", verdictNone, workloadLabels{}}
	}
	s := series{direction: c.Direction.String(), reason: c.Reason, comm: c.OwnerComm, verdict: verdictNone}
	if s.comm == "" {
		s.comm = unknownComm
	}
	if c.ZKEndpoint.IsValid() {
		s.zkEndpoint = c.ZKEndpoint.String()
		s.verdict = event.VerdictUnknown
		if verdict != nil {
			if v := verdict(c); v != "" {
				s.verdict = v
			}
		}
	}
	var folded bool
	if s.comm, folded = r.comms.fold(s.comm); folded {
		r.folded["owner_comm"] += delta
	}
	if s.zkEndpoint, folded = r.endpoints.fold(s.zkEndpoint); folded {
		r.folded["zk_endpoint"] += delta
	}
	s.workloadLabels = workloadLabelsOf(w)
	for _, l := range []struct {
		v     *string
		cap   *labelCap
		label string
	}{{&s.namespace, &r.namespaces, "namespace"}, {&s.pod, &r.pods, "pod"}, {&s.container, &r.containers, "container"}, {&s.unit, &r.units, "unit"}} {
		if *l.v, folded = l.cap.fold(*l.v); folded {
			r.folded[l.label] += delta
		}
	}
	if _, ok := r.totals[s]; !ok && len(r.totals) >= r.limits.Series {
		s.comm = Other
		for _, v := range []*string{&s.zkEndpoint, &s.namespace, &s.pod, &s.container, &s.unit} {
			if *v != "" {
				*v = Other
			}
		}
		r.folded["series"] += delta
	}
	return s
}

func (r *resets) add(s series, n uint64) { r.totals[s] += n }

// forget drops the memory of pid's rows once the kernel has deleted them;
// their counts stay in the totals.
func (r *resets) forget(pid uint32) {
	for k := range r.last {
		if k.pid == pid && !k.overflow {
			delete(r.last, k)
		}
	}
}
