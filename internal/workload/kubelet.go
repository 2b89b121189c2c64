package workload

import (
	"strings"
)

// PodDir is one pod as the kubelet names its log directory on the node:
// /var/log/pods/<namespace>_<name>_<uid>/.
type PodDir struct {
	Namespace, Name, UID string
}

// ParsePodDir reads a /var/log/pods entry name. Namespaces and pod names
// are DNS names, which have no '_', so the split is unambiguous.
func ParsePodDir(name string) (PodDir, bool) {
	parts := strings.Split(name, "_")
	if len(parts) != 3 || !validDNSName(parts[0], 63) || !validDNSName(parts[1], 253) || !validPodUID(parts[2]) {
		return PodDir{}, false
	}
	return PodDir{Namespace: parts[0], Name: parts[1], UID: parts[2]}, true
}

// ContainerLog is one container as the kubelet names its log symlink:
// /var/log/containers/<pod>_<namespace>_<container>-<id>.log, a link to
// /var/log/pods/<namespace>_<pod>_<uid>/<container>/<restarts>.log. It is
// the node's own record of which container id is which container name.
type ContainerLog struct {
	Namespace, Pod, Container, ID string
	UID                           string // from the link's target, "" when it does not say
}

// ParseContainerLog reads a /var/log/containers entry: its name and the
// target of the link. A target that names another pod or container than
// the link's name is refused rather than believed either way.
func ParseContainerLog(name, target string) (ContainerLog, bool) {
	var c ContainerLog
	base, ok := strings.CutSuffix(name, ".log")
	if !ok || len(base) < 66 || base[len(base)-65] != '-' {
		return c, false
	}
	c.ID = base[len(base)-64:]
	parts := strings.Split(base[:len(base)-65], "_")
	if len(parts) != 3 || !isContainerID(c.ID) {
		return ContainerLog{}, false
	}
	c.Pod, c.Namespace, c.Container = parts[0], parts[1], parts[2]
	if !validDNSName(c.Namespace, 63) || !validDNSName(c.Pod, 253) || !validDNSName(c.Container, 63) {
		return ContainerLog{}, false
	}
	if target == "" {
		return c, true
	}
	// .../<namespace>_<pod>_<uid>/<container>/<n>.log
	dirs := strings.Split(target, "/")
	if len(dirs) < 3 {
		return ContainerLog{}, false
	}
	pd, ok := ParsePodDir(dirs[len(dirs)-3])
	if !ok || pd.Namespace != c.Namespace || pd.Name != c.Pod || dirs[len(dirs)-2] != c.Container {
		return ContainerLog{}, false
	}
	c.UID = pd.UID
	return c, true
}

// validDNSName: lower-case letters, digits, '-' and '.', starting and
// ending with a letter or digit (RFC 1123 names, as Kubernetes requires
// for namespaces, pods and containers).
func validDNSName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '.') && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}
