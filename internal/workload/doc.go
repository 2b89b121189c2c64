// Package workload names the workload behind a cgroup v2 id: the cgroup's
// path, its systemd unit, its container (containerd, CRI-O, Docker, Podman)
// and the Kubernetes pod, found on the node itself. The kernel captures
// cgroup ids (event.Owner.Cgroup, event.Task.Cgroup); this package is the
// enrichment step that turns them into names.
//
// Where the names come from:
//
//   - The id is the inode number of the cgroup's directory in the v2
//     hierarchy. The tree is scanned at start, watched with inotify for new
//     cgroups, and rescanned (at most once a second) when an unknown id
//     appears. Cgroups that vanish are remembered (up to 4096), so an owner
//     that exited, and whose cgroup was removed, before its reset is still
//     named.
//   - Units and containers are read from the path, as systemd and the
//     container runtimes name their cgroups (see ParsePath).
//   - Pods come from the kubelet's log directories, without the API
//     server: /var/log/pods/<namespace>_<pod>_<uid>/ names the pod of a uid
//     (the uid is in the pod's cgroup path), and the links
//     /var/log/containers/<pod>_<namespace>_<container>-<id>.log name the
//     container of an id. A container whose pod directory is not there is
//     a container only: the pod is never guessed.
//
// When the kernel gave no id (an owner found in /proc because its socket is
// older than the trace), the id is read from /proc/PID/cgroup while the
// process lives, checking its name so that a reused pid is not taken for it;
// from a container with a cgroup namespace of its own (a DaemonSet), paths
// that climb out of it are followed from where its root sits in the host's
// tree.
package workload
