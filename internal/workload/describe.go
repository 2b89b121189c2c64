package workload

import (
	"strings"

	"github.com/rstwatch/rstwatch/internal/event"
)

// shortID is how many characters of a container id are shown, as docker
// and crictl show them.
const shortID = 12

// ShortID returns the first 12 characters of a container id.
func ShortID(id string) string {
	if len(id) > shortID {
		return id[:shortID]
	}
	return id
}

// Describe says who a workload is, for sentences such as a ZooKeeper
// verdict ("client " + Describe(w)):
//
//	pod shop/checkout-7d9c (container app)
//	pod shop/checkout-7d9c (containerd container 0123456789ab)   name unknown
//	containerd container 0123456789ab (pod uid 5f3a…, not found on this node)
//	docker container 0123456789ab
//	user unit app.service of user@1000.service
//	unit zookeeper.service
//	cgroup /custom/group
//
// It returns "" when nothing but the id is known (or w is nil). Only what
// the node said is named; an unknown name stays unknown.
func Describe(w *event.Workload) string {
	if w == nil {
		return ""
	}
	if p := w.Pod; p != nil {
		s := "pod " + p.Namespace + "/" + p.Name
		switch {
		case p.Container != "":
			s += " (container " + p.Container + ")"
		case w.Container != nil:
			s += " (" + containerWords(w.Container) + ")"
		}
		return s
	}
	if c := w.Container; c != nil {
		s := containerWords(c)
		if uid := ParsePath(w.Path).PodUID; uid != "" {
			s += " (pod uid " + uid + ", not found on this node)"
		}
		return s
	}
	if w.UserUnit != "" {
		return "user unit " + w.UserUnit + " of " + w.Unit
	}
	if w.Unit != "" {
		return "unit " + w.Unit
	}
	if w.Path != "" && w.Path != "/" {
		return "cgroup " + w.Path
	}
	return ""
}

func containerWords(c *event.Container) string {
	s := "container " + ShortID(c.ID)
	if c.Runtime != "" {
		s = c.Runtime + " " + s
	}
	return s
}

// Name is the most specific name known, short, for a table cell: the pod
// ("shop/checkout-7d9c"), else the container ("docker:0123456789ab"), else
// the unit ("zookeeper.service"; a user unit's own name), else the cgroup
// path unless it is the root; "" when none.
func Name(w *event.Workload) string {
	switch {
	case w == nil:
		return ""
	case w.Pod != nil:
		return w.Pod.Namespace + "/" + w.Pod.Name
	case w.Container != nil:
		if w.Container.Runtime != "" {
			return w.Container.Runtime + ":" + ShortID(w.Container.ID)
		}
		return ShortID(w.Container.ID)
	case w.UserUnit != "":
		return w.UserUnit
	case w.Unit != "":
		return w.Unit
	case w.Path != "/":
		return w.Path
	}
	return ""
}

// Named reports whether w names a pod, container or unit, the names an
// operator groups by.
func Named(w *event.Workload) bool {
	return w != nil && (w.Pod != nil || w.Container != nil || w.Unit != "")
}

// Selector picks workloads by name, for the --pod, --unit and --container
// filters. Within one kind any value matches; across kinds all must.
type Selector struct {
	Pods       []PodRef
	Units      []string
	Containers []string // a container's name in its pod, or at least 12 digits of its id
}

// PodRef names a pod as kubectl does.
type PodRef struct{ Namespace, Name string }

func (p PodRef) String() string { return p.Namespace + "/" + p.Name }

// ParsePodRef reads NAMESPACE/NAME.
func ParsePodRef(s string) (PodRef, bool) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || !validDNSName(ns, 63) || !validDNSName(name, 253) {
		return PodRef{}, false
	}
	return PodRef{ns, name}, true
}

// Empty reports whether s selects everything.
func (s Selector) Empty() bool {
	return len(s.Pods) == 0 && len(s.Units) == 0 && len(s.Containers) == 0
}

// UnitName completes a unit given without a type, as systemctl does.
func UnitName(u string) string {
	if !strings.Contains(u, ".") {
		return u + ".service"
	}
	return u
}

// Match reports whether w is selected. Unknown workloads match only the
// empty selector.
func (s Selector) Match(w *event.Workload) bool {
	if s.Empty() {
		return true
	}
	if w == nil {
		return false
	}
	if len(s.Pods) > 0 {
		ok := false
		for _, p := range s.Pods {
			ok = ok || w.Pod != nil && w.Pod.Namespace == p.Namespace && w.Pod.Name == p.Name
		}
		if !ok {
			return false
		}
	}
	if len(s.Units) > 0 {
		ok := false
		for _, u := range s.Units {
			u = UnitName(u)
			ok = ok || w.Unit == u || w.UserUnit == u
		}
		if !ok {
			return false
		}
	}
	if len(s.Containers) > 0 {
		ok := false
		for _, c := range s.Containers {
			ok = ok || w.Container != nil && (len(c) >= shortID && strings.HasPrefix(w.Container.ID, c) || w.Container.Name == c) ||
				w.Pod != nil && w.Pod.Container == c && c != ""
		}
		if !ok {
			return false
		}
	}
	return true
}
