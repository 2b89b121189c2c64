package workload

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/rstwatch/rstwatch/internal/event"
)

// Cgroup names come from whoever may create cgroups (a delegated subtree,
// a container with its own cgroup namespace), pod directories from the
// kubelet: neither may make rstwatch panic or name what is not there.
func FuzzParsePath(f *testing.F) {
	for _, p := range []string{
		"/system.slice/zookeeper.service",
		"/user.slice/user-1000.slice/user@1000.service/app.slice/x.service",
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSystemd + ".slice/cri-containerd-" + cid + ".scope",
		"/kubepods/burstable/pod" + uid + "/" + cid,
		"/kubepods/besteffort/pod" + uid + "/crio-conmon-" + cid,
		"/system.slice/docker-" + cid + ".scope",
		"/docker/" + cid,
		"//kubepods//pod" + uid + "//",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, path string) {
		p := ParsePath(path)
		comps := strings.Split(strings.Trim(path, "/"), "/")
		if p.ContainerID != "" && (!isContainerID(p.ContainerID) || !strings.Contains(path, p.ContainerID)) {
			t.Fatalf("container %q from %q", p.ContainerID, path)
		}
		if p.PodUID != "" && (!validPodUID(p.PodUID) || !strings.Contains(path, "kubepods")) {
			t.Fatalf("pod uid %q from %q", p.PodUID, path)
		}
		if p.Unit != "" && !slices.Contains(comps, p.Unit) || p.UserUnit != "" && (p.Unit == "" || !slices.Contains(comps, p.UserUnit)) {
			t.Fatalf("unit %q/%q from %q", p.Unit, p.UserUnit, path)
		}
		w := &event.Workload{Cgroup: 1, Path: path, Unit: p.Unit, UserUnit: p.UserUnit}
		if p.ContainerID != "" {
			w.Container = &event.Container{ID: p.ContainerID, Runtime: p.ContainerRuntime}
		}
		Describe(w)
		Name(w)
	})
}

func FuzzParseKubelet(f *testing.F) {
	f.Add("shop_checkout-7d9c_"+uid, "checkout-7d9c_shop_app-"+cid+".log", "/var/log/pods/shop_checkout-7d9c_"+uid+"/app/0.log")
	f.Add("kube-system_etcd-node1_"+staticUID, "etcd-node1_kube-system_etcd-"+cid+".log", "../../pods/kube-system_etcd-node1_"+staticUID+"/etcd/3.log")
	f.Add("a_b_c", "a_b_c-d.log", "")
	f.Fuzz(func(t *testing.T, dir, link, target string) {
		if pd, ok := ParsePodDir(dir); ok && pd.Namespace+"_"+pd.Name+"_"+pd.UID != dir {
			t.Fatalf("%q read as %+v", dir, pd)
		}
		cl, ok := ParseContainerLog(link, target)
		if !ok {
			return
		}
		if cl.Pod+"_"+cl.Namespace+"_"+cl.Container+"-"+cl.ID+".log" != link {
			t.Fatalf("%q read as %+v", link, cl)
		}
		if cl.UID != "" && !strings.Contains(target, cl.Namespace+"_"+cl.Pod+"_"+cl.UID+"/"+cl.Container+"/") {
			t.Fatalf("target %q read as %+v", target, cl)
		}
	})
}

func FuzzParseProcFiles(f *testing.F) {
	f.Add([]byte("40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"), []byte("0::/system.slice/a.service\n"))
	f.Add([]byte("41 22 0:37 /../.. /host\\040x rw master:9 - cgroup2 cgroup2 rw\n"), []byte("12:pids:/\n0::/../x\n"))
	f.Fuzz(func(t *testing.T, mountinfo, cgroup []byte) {
		for _, m := range ParseMountinfo(mountinfo) {
			if len(m.Point) > len(mountinfo) {
				t.Fatalf("mount point longer than its input: %+v", m)
			}
		}
		if p, ok := ParseProcCgroup(cgroup); ok {
			if !strings.HasPrefix(p, "/") || !bytes.Contains(cgroup, []byte("0::"+p)) {
				t.Fatalf("path %q accepted from %q", p, cgroup)
			}
			// However it climbs, a path joined to the namespace root stays
			// inside the tree.
			if j := joinNS("/a/b", p); !strings.HasPrefix(j, "/") || slices.Contains(strings.Split(j, "/"), "..") {
				t.Fatalf("%q joined to /a/b gives %q", p, j)
			}
		}
	})
}

// The inotify decoder reads what the kernel wrote, but a short read must
// not make it read past the buffer.
func FuzzDecodeInotify(f *testing.F) {
	ev := make([]byte, 16+16)
	binary.NativeEndian.PutUint32(ev[0:], 1)
	binary.NativeEndian.PutUint32(ev[4:], 0x40000100)
	binary.NativeEndian.PutUint32(ev[12:], 16)
	copy(ev[16:], "pod-x")
	f.Add(ev)
	f.Add(ev[:20])
	f.Fuzz(func(t *testing.T, b []byte) {
		decode(b, func(e inotifyEvent) {
			if len(e.name) > len(b) {
				t.Fatalf("name longer than the buffer")
			}
		})
	})
}
