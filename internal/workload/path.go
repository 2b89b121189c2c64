package workload

import "strings"

// Parsed is what a cgroup v2 path alone says about a workload.
type Parsed struct {
	Unit     string // systemd unit (service or scope), "" when none
	UserUnit string // unit of a user's manager inside user@UID.service, "" when none
	// Container is set when the path names a container's cgroup (or a
	// cgroup inside one).
	ContainerID      string
	ContainerRuntime string // "" when the path does not say (cgroupfs-driver kubepods)
	// PodUID is the Kubernetes pod's uid when the cgroup is a pod's or
	// inside one (kubepods hierarchy, systemd or cgroupfs driver).
	PodUID string
}

// Runtimes as reported in event.Container.Runtime.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
	RuntimePodman     = "podman"
)

// maxDepth bounds the components looked at; the kernel's own default
// cgroup.max.depth is unlimited, but no real layout is this deep.
const maxDepth = 64

// ParsePath reads a cgroup v2 path (from the hierarchy's root, as in
// /proc/PID/cgroup) the way systemd and the container runtimes name their
// cgroups:
//
//	/system.slice/zookeeper.service                      unit zookeeper.service
//	/user.slice/user-1000.slice/user@1000.service/app.slice/x.service
//	                                                      unit user@1000.service, user unit x.service
//	/system.slice/docker-<id>.scope                      docker container
//	/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
//	/kubepods/burstable/pod<uid>/<id>                    pod uid and container (runtime unknown)
//
// Anything it does not recognise is left empty: a path never yields a
// guess.
func ParsePath(path string) Parsed {
	var p Parsed
	comps := strings.Split(strings.Trim(path, "/"), "/")
	if len(comps) > maxDepth || comps[0] == "" {
		return p
	}
	p.Unit, p.UserUnit = unitsOf(comps)

	// Kubernetes: the innermost pod cgroup under a kubepods cgroup; its
	// child is the container (sandbox or app), deeper ones are the
	// container's own sub-cgroups.
	kube := -1
	for i, c := range comps {
		if kube < 0 && isKubepods(c) {
			kube = i
			continue
		}
		if kube < 0 {
			continue
		}
		if uid, ok := podUIDOf(c); ok {
			p.PodUID = uid
			p.ContainerID, p.ContainerRuntime = "", ""
			if i+1 < len(comps) {
				p.ContainerID, p.ContainerRuntime = containerOf(comps[i+1], true)
			}
		}
	}
	if p.PodUID != "" {
		return p
	}
	// Elsewhere: the innermost container cgroup (docker in docker, podman,
	// a kind node's own container).
	for i := len(comps) - 1; i >= 0; i-- {
		bare := i > 0 && comps[i-1] == "docker" // docker's cgroupfs driver: /docker/<id>
		if id, rt := containerOf(comps[i], bare); id != "" {
			if bare && rt == "" {
				rt = RuntimeDocker
			}
			p.ContainerID, p.ContainerRuntime = id, rt
			break
		}
	}
	return p
}

// unitsOf follows systemd's cg_path_get_unit and cg_path_get_user_unit:
// leading slices are skipped, and the next component is the unit if it is
// a valid unit name; inside user@UID.service the same again gives the
// user unit.
func unitsOf(comps []string) (unit, userUnit string) {
	i := skipSlices(comps, 0)
	if i >= len(comps) || !isProcessUnit(comps[i]) {
		return "", ""
	}
	unit = comps[i]
	if strings.HasPrefix(unit, "user@") && strings.HasSuffix(unit, ".service") {
		j := skipSlices(comps, i+1)
		if j < len(comps) && isProcessUnit(comps[j]) {
			userUnit = comps[j]
		}
	}
	return unit, userUnit
}

func skipSlices(comps []string, i int) int {
	for i < len(comps) && strings.HasSuffix(comps[i], ".slice") && validUnitName(comps[i]) {
		i++
	}
	return i
}

// isProcessUnit: the unit types that hold processes in a cgroup of their
// own.
func isProcessUnit(s string) bool {
	for _, suf := range []string{".service", ".scope", ".socket", ".mount", ".swap"} {
		if strings.HasSuffix(s, suf) && len(s) > len(suf) {
			return validUnitName(s)
		}
	}
	return false
}

// validUnitName: systemd's unit name alphabet (escapes such as \x2d
// included) and length.
func validUnitName(s string) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ':' || c == '-' || c == '_' || c == '.' || c == '\\' || c == '@':
		default:
			return false
		}
	}
	return true
}

// isKubepods: the kubelet's top cgroup, "kubepods" (cgroupfs driver),
// "kubepods.slice" (systemd driver), or with a --cgroup-root prefix as kind
// runs it ("kubelet-kubepods.slice").
func isKubepods(c string) bool {
	return c == "kubepods" || c == "kubepods.slice" || strings.HasSuffix(c, "-kubepods.slice")
}

// podUIDOf reads a pod cgroup's name: "pod<uid>" (cgroupfs driver) or
// "kubepods-<qos>-pod<uid with _ for ->.slice" (systemd driver).
func podUIDOf(c string) (string, bool) {
	var uid string
	switch {
	case strings.HasPrefix(c, "pod"):
		uid = c[len("pod"):]
	case strings.HasSuffix(c, ".slice"):
		i := strings.LastIndex(c, "-pod")
		if i < 0 {
			return "", false
		}
		uid = strings.ReplaceAll(c[i+len("-pod"):len(c)-len(".slice")], "_", "-")
	default:
		return "", false
	}
	return uid, validPodUID(uid)
}

// validPodUID: a UUID, or the 32 hex digits of a static pod's config hash.
func validPodUID(s string) bool {
	switch len(s) {
	case 32:
		return isHex(s)
	case 36:
		for i := 0; i < len(s); i++ {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				if s[i] != '-' {
					return false
				}
			} else if !isHex(s[i : i+1]) {
				return false
			}
		}
		return true
	}
	return false
}

// containerOf reads one cgroup name as a container's: the systemd-driver
// scopes (cri-containerd-, crio-, docker-, libpod-<id>.scope), CRI-O's
// cgroupfs "crio-<id>", and, where bare is true (the child of a pod cgroup,
// or of "docker"), a bare id. Monitor scopes (crio-conmon-, libpod-conmon-)
// are not containers.
func containerOf(c string, bare bool) (id, runtime string) {
	name := strings.TrimSuffix(c, ".scope")
	for _, p := range []struct{ prefix, runtime string }{
		{"cri-containerd-", RuntimeContainerd},
		{"crio-", RuntimeCRIO},
		{"docker-", RuntimeDocker},
		{"libpod-", RuntimePodman},
	} {
		if rest, ok := strings.CutPrefix(name, p.prefix); ok {
			if isContainerID(rest) {
				return rest, p.runtime
			}
			return "", ""
		}
	}
	if bare && name == c && isContainerID(c) {
		return c, ""
	}
	return "", ""
}

// isContainerID: the 64 lower-case hex digits every one of these runtimes
// uses.
func isContainerID(s string) bool { return len(s) == 64 && isHex(s) }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return len(s) > 0
}
