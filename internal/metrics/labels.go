package metrics

// Other is the label value that values past a cap are folded into.
const Other = "other"

// Limits bound the label values of rstwatch_resets_total. Zero fields get
// the defaults.
type Limits struct {
	OwnerComms  int // distinct owner_comm values; DefaultOwnerComms
	ZKEndpoints int // distinct zk_endpoint values (also bounds the zk_* metrics); DefaultZKEndpoints
	// Workload labels, each capped the same way (first come keeps its
	// value): Kubernetes namespaces, pods, containers, systemd units.
	Namespaces, Pods, Containers, Units int
	// Series bounds rstwatch_resets_total as a whole: past it, new label
	// sets get owner_comm and zk_endpoint "other", which leaves at most
	// directions × reasons × verdicts more.
	Series int // DefaultSeries
}

// Defaults: a few hundred series per host is cheap for Prometheus; a
// thousand per host across a fleet of hundreds starts to cost.
const (
	DefaultOwnerComms  = 64
	DefaultZKEndpoints = 32
	DefaultSeries      = 1000
	DefaultNamespaces  = 64
	DefaultPods        = 256
	DefaultContainers  = 128
	DefaultUnits       = 128
)

func (l Limits) withDefaults() Limits {
	if l.OwnerComms <= 0 {
		l.OwnerComms = DefaultOwnerComms
	}
	if l.ZKEndpoints <= 0 {
		l.ZKEndpoints = DefaultZKEndpoints
	}
	if l.Series <= 0 {
		l.Series = DefaultSeries
	}
	for _, f := range []struct {
		v   *int
		def int
	}{{&l.Namespaces, DefaultNamespaces}, {&l.Pods, DefaultPods}, {&l.Containers, DefaultContainers}, {&l.Units, DefaultUnits}} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	return l
}

// labelCap keeps the first max distinct values of one label. First come
// wins: a value, once exported, keeps its series, so a counter never moves
// from its own series to "other" and back.
type labelCap struct {
	max  int
	kept map[string]struct{}
}

func newLabelCap(max int) labelCap {
	return labelCap{max: max, kept: map[string]struct{}{}}
}

// fold returns v, or Other when v is new and the cap is reached. The empty
// value (no ZooKeeper endpoint, no pod) never counts against the cap.
func (c *labelCap) fold(v string) (string, bool) {
	if v == "" {
		return v, false
	}
	if _, ok := c.kept[v]; ok {
		return v, false
	}
	if len(c.kept) < c.max {
		c.kept[v] = struct{}{}
		return v, false
	}
	return Other, true
}
