package workload

import (
	"strings"
	"testing"
)

// Container ids and pod uids as the runtimes and the kubelet write them.
const (
	cid  = "4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a"
	cid2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	uid  = "5f3a8c2e-1b4d-4e6f-9a0b-7c8d9e0f1a2b"
	// the systemd driver writes the uid with '_' for '-'
	uidSystemd = "5f3a8c2e_1b4d_4e6f_9a0b_7c8d9e0f1a2b"
	staticUID  = "8b1e5c0f3a2d4b6c8e9f0a1b2c3d4e5f" // a static pod's config hash
)

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Parsed
	}{
		{"/", Parsed{}},
		{"", Parsed{}},
		{"/system.slice/zookeeper.service", Parsed{Unit: "zookeeper.service"}},
		{"/system.slice/system-getty.slice/getty@tty1.service", Parsed{Unit: "getty@tty1.service"}},
		{"/system.slice/zookeeper.service/sub", Parsed{Unit: "zookeeper.service"}},
		{"/user.slice/user-1000.slice/session-3.scope", Parsed{Unit: "session-3.scope"}},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/app-org.gnome.Terminal.slice/vte-spawn-1.scope",
			Parsed{Unit: "user@1000.service", UserUnit: "vte-spawn-1.scope"}},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/syncthing.service",
			Parsed{Unit: "user@1000.service", UserUnit: "syncthing.service"}},
		{"/user.slice/user-1000.slice/user@1000.service/init.scope", Parsed{Unit: "user@1000.service", UserUnit: "init.scope"}},
		{"/init.scope", Parsed{Unit: "init.scope"}},
		{"/system.slice", Parsed{}},
		// Not under slices from the root: not a unit, as systemd says.
		{"/rstwatch-test/system.slice/zookeeper.service", Parsed{}},
		{"/system.slice/bad name.service", Parsed{}},

		// Docker, Podman, plain containerd outside Kubernetes.
		{"/system.slice/docker-" + cid + ".scope", Parsed{Unit: "docker-" + cid + ".scope", ContainerID: cid, ContainerRuntime: RuntimeDocker}},
		{"/docker/" + cid, Parsed{ContainerID: cid, ContainerRuntime: RuntimeDocker}},
		{"/machine.slice/libpod-" + cid + ".scope/container", Parsed{Unit: "libpod-" + cid + ".scope", ContainerID: cid, ContainerRuntime: RuntimePodman}},
		{"/machine.slice/libpod-conmon-" + cid + ".scope", Parsed{Unit: "libpod-conmon-" + cid + ".scope"}},
		{"/" + cid, Parsed{}}, // a bare id anywhere is not a container

		// Kubernetes, systemd driver: containerd, CRI-O, Docker (cri-dockerd).
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSystemd + ".slice/cri-containerd-" + cid + ".scope",
			Parsed{Unit: "cri-containerd-" + cid + ".scope", ContainerID: cid, ContainerRuntime: RuntimeContainerd, PodUID: uid}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidSystemd + ".slice/crio-" + cid + ".scope",
			Parsed{Unit: "crio-" + cid + ".scope", ContainerID: cid, ContainerRuntime: RuntimeCRIO, PodUID: uid}},
		{"/kubepods.slice/kubepods-pod" + uidSystemd + ".slice/docker-" + cid + ".scope", // guaranteed QoS: no QoS slice
			Parsed{Unit: "docker-" + cid + ".scope", ContainerID: cid, ContainerRuntime: RuntimeDocker, PodUID: uid}},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + uidSystemd + ".slice/crio-conmon-" + cid + ".scope",
			Parsed{Unit: "crio-conmon-" + cid + ".scope", PodUID: uid}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSystemd + ".slice",
			Parsed{PodUID: uid}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + uidSystemd + ".slice/crio-" + cid + ".scope/container",
			Parsed{Unit: "crio-" + cid + ".scope", ContainerID: cid, ContainerRuntime: RuntimeCRIO, PodUID: uid}},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + staticUID + ".slice/cri-containerd-" + cid + ".scope",
			Parsed{Unit: "cri-containerd-" + cid + ".scope", ContainerID: cid, ContainerRuntime: RuntimeContainerd, PodUID: staticUID}},
		// kind: the node is a container, the kubelet has a cgroup root.
		{"/system.slice/docker-" + cid2 + ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" + uidSystemd + ".slice/cri-containerd-" + cid + ".scope",
			Parsed{Unit: "docker-" + cid2 + ".scope", ContainerID: cid, ContainerRuntime: RuntimeContainerd, PodUID: uid}},

		// Kubernetes, cgroupfs driver.
		{"/kubepods/burstable/pod" + uid + "/" + cid, Parsed{ContainerID: cid, PodUID: uid}},
		{"/kubepods/pod" + uid + "/" + cid, Parsed{ContainerID: cid, PodUID: uid}},
		{"/kubepods/besteffort/pod" + uid + "/crio-" + cid, Parsed{ContainerID: cid, ContainerRuntime: RuntimeCRIO, PodUID: uid}},
		{"/kubepods/besteffort/pod" + uid, Parsed{PodUID: uid}},
		{"/kubepods/besteffort/pod" + uid + "/not-a-container", Parsed{PodUID: uid}},
		// A pod-looking name outside kubepods is nobody's pod.
		{"/pod" + uid + "/" + cid, Parsed{}},
		{"/kubepods/burstable/pod1234/" + cid, Parsed{}},
		{"/kubepods/burstable/pod" + strings.ToUpper(uid) + "/" + cid, Parsed{}},
	} {
		if got := ParsePath(tc.path); got != tc.want {
			t.Errorf("ParsePath(%q)\n got %+v\nwant %+v", tc.path, got, tc.want)
		}
	}
}

func TestParsePodDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		want PodDir
		ok   bool
	}{
		{"shop_checkout-7d9c_" + uid, PodDir{"shop", "checkout-7d9c", uid}, true},
		{"kube-system_etcd-node1_" + staticUID, PodDir{"kube-system", "etcd-node1", staticUID}, true},
		{"kube-system_coredns-5d78c9869d-x2k4p.a_" + uid, PodDir{"kube-system", "coredns-5d78c9869d-x2k4p.a", uid}, true},
		{"shop_checkout_7d9c_" + uid, PodDir{}, false},
		{"shop_checkout-7d9c_notauid", PodDir{}, false},
		{"Shop_checkout_" + uid, PodDir{}, false},
		{"_checkout_" + uid, PodDir{}, false},
		{"shop_-x_" + uid, PodDir{}, false},
	} {
		got, ok := ParsePodDir(tc.name)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParsePodDir(%q) = %+v, %v", tc.name, got, ok)
		}
	}
}

func TestParseContainerLog(t *testing.T) {
	name := "checkout-7d9c_shop_app-" + cid + ".log"
	target := "/var/log/pods/shop_checkout-7d9c_" + uid + "/app/0.log"
	got, ok := ParseContainerLog(name, target)
	if want := (ContainerLog{"shop", "checkout-7d9c", "app", cid, uid}); !ok || got != want {
		t.Errorf("got %+v %v, want %+v", got, ok, want)
	}
	if got, ok := ParseContainerLog(name, ""); !ok || got.UID != "" || got.Container != "app" {
		t.Errorf("without target: %+v %v", got, ok)
	}
	for _, tc := range [][2]string{
		{name, "/var/log/pods/shop_other_" + uid + "/app/0.log"},        // another pod
		{name, "/var/log/pods/shop_checkout-7d9c_" + uid + "/db/0.log"}, // another container
		{name, "0.log"},
		{"checkout-7d9c_shop_app-" + cid[1:] + ".log", ""},
		{"checkout-7d9c_shop_app_" + cid + ".log", ""},
		{"checkout-7d9c_shop_app-" + cid, ""},
		{"checkout_7d9c_shop_app-" + cid + ".log", ""},
	} {
		if got, ok := ParseContainerLog(tc[0], tc[1]); ok {
			t.Errorf("ParseContainerLog(%q, %q) accepted: %+v", tc[0], tc[1], got)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	mi := `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
41 22 0:37 /../../.. /host/sys\040fs rw,relatime master:9 - cgroup2 cgroup2 rw,nsdelegate
bad line
`
	got := ParseMountinfo([]byte(mi))
	want := []Mount{{"/", "/sys/fs/cgroup/unified"}, {"/../../..", "/host/sys fs"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseProcCgroup(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"9:name=systemd:/\n4:memory:/x\n0::/system.slice/zookeeper.service\n", "/system.slice/zookeeper.service", true},
		{"0::/\n", "/", true},
		{"0::/../../kubepods.slice\n", "/../../kubepods.slice", true},
		{"4:memory:/x\n", "", false},
		{"0::relative\n", "", false},
	} {
		got, ok := ParseProcCgroup([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseProcCgroup(%q) = %q, %v", tc.in, got, ok)
		}
	}
}

// A cgroup v2 mount of part of the tree (a container's, without a cgroup
// namespace) would give wrong paths: it is refused with what to do.
func TestFindRootRefusesPartialMount(t *testing.T) {
	mi := "40 30 0:37 /kubepods.slice/x.scope /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"
	if _, err := findRoot("", []byte(mi)); err == nil || !strings.Contains(err.Error(), "--cgroup-root") {
		t.Fatalf("partial mount: %v", err)
	}
	if _, err := findRoot("", nil); err == nil || !strings.Contains(err.Error(), "no cgroup v2") {
		t.Fatalf("no mount: %v", err)
	}
	if _, err := findRoot(t.TempDir(), nil); err == nil || !strings.Contains(err.Error(), "not a cgroup v2") {
		t.Fatalf("tmpfs root: %v", err)
	}
}
