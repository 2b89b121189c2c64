package e2e

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rstwatch/rstwatch/internal/workload/workloadtest"
)

// refuser runs bash in cgroup rel of tr, connecting to 127.0.0.1:port
// (closed) once per line written to the returned file.
func refuser(t *testing.T, tr *workloadtest.Tree, rel string, port int) *os.File {
	t.Helper()
	_, w := tr.Start(rel, "bash", "-c", fmt.Sprintf("while read x; do : 3<>/dev/tcp/127.0.0.1/%d; done 2>/dev/null", port))
	return w
}

// `rstwatch serve` labels resets with the owner's systemd unit and
// Kubernetes pod, read from real cgroups and a kubelet log tree, and a
// real Prometheus sums them by pod.
func TestServeWorkloadLabels(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	const (
		uid = "5f3a8c2e-1b4d-4e6f-9a0b-7c8d9e0f1a2b"
		cid = "4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a4f1c2a9e8d7b6c5a"
	)
	k.AddPod("shop", "checkout-7d9c", uid)
	k.AddContainer("shop", "checkout-7d9c", uid, "app", cid)
	port := closedPort(t)
	unit := refuser(t, tr, "/system.slice/zookeeper.service", port)
	pod := refuser(t, tr, workloadtest.CgroupfsPod("burstable", uid, cid), port)

	sp := startServe(t, "--cgroup-root", tr.Root, "--kubelet-logs", k.Dir)
	base := startPrometheus(t, sp.addr)
	waitQuery(t, base, `up{job="rstwatch"}`, 1)
	for range 5 {
		unit.Write([]byte("go\n"))
		pod.Write([]byte("go\n"))
	}
	waitQuery(t, base, `sum(rstwatch_resets_total{namespace="shop",pod="checkout-7d9c",container="app",owner_comm="bash"})`, 5)
	waitQuery(t, base, `sum(rstwatch_resets_total{unit="zookeeper.service",owner_comm="bash",direction="receive"})`, 5)
	for _, l := range series(sp.metrics(t), "rstwatch_resets_total") {
		if strings.Contains(l, `pod="checkout-7d9c"`) || strings.Contains(l, `unit="zookeeper.service"`) {
			t.Log(l)
		}
	}
	sp.stop(t, 5*time.Second)
}

// 30 pods resetting, with --max-pods 10: ten pod values and "other", the
// folded resets counted, none lost.
func TestServePodLabelsBounded(t *testing.T) {
	tr := workloadtest.New(t)
	k := workloadtest.NewKubelet(t)
	port := closedPort(t)
	const pods = 30
	var ws []*os.File
	for i := range pods {
		uid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		cid := fmt.Sprintf("%064x", i+1)
		k.AddPod("load", fmt.Sprintf("web-%d", i), uid)
		k.AddContainer("load", fmt.Sprintf("web-%d", i), uid, "app", cid)
		ws = append(ws, refuser(t, tr, workloadtest.SystemdPod("besteffort", uid, "cri-containerd-", cid), port))
	}
	sp := startServe(t, "--cgroup-root", tr.Root, "--kubelet-logs", k.Dir, "--max-pods", "10")
	for _, w := range ws {
		w.Write([]byte("go\n"))
	}
	podRe := regexp.MustCompile(`pod="([^"]*)"`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		body := sp.metrics(t)
		values := map[string]bool{}
		var total float64
		for _, l := range series(body, "rstwatch_resets_total") {
			m := podRe.FindStringSubmatch(l)
			if m == nil || m[1] == "" || !strings.Contains(l, `owner_comm="bash"`) || !strings.Contains(l, `direction="receive"`) {
				continue
			}
			values[m[1]] = true
			var v float64
			fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v)
			total += v
		}
		if total >= pods {
			if len(values) != 11 || !values["other"] {
				t.Fatalf("pod values %v, want 10 and other", values)
			}
			over := series(body, `rstwatch_label_overflow_total{label="pod"}`)
			if len(over) != 1 || strings.HasSuffix(over[0], " 0") {
				t.Fatalf("pod overflow not counted: %v", over)
			}
			t.Logf("%d pods: %d pod values, %s", pods, len(values), over[0])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %v of %d received resets labelled with a pod after 30 s", total, pods)
		}
		time.Sleep(200 * time.Millisecond)
	}
	sp.stop(t, 5*time.Second)
}
