#!/bin/sh
# Checks the deployment files offline; CI runs it. Needs: go, systemd-analyze
# (Debian package systemd), python3 with yaml (python3-yaml).
# Usage: deploy/check.sh   (from anywhere)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "deploy/check.sh: $*" >&2; exit 1; }

command -v systemd-analyze >/dev/null || fail "systemd-analyze missing: apt-get install systemd"
command -v python3 >/dev/null || fail "python3 missing: apt-get install python3 python3-yaml"
python3 -c 'import yaml' 2>/dev/null || fail "python3 yaml module missing: apt-get install python3-yaml"

# systemd: verify checks that ExecStart exists, so point it at a fresh build.
(cd "$here/.." && go build -o "$tmp/rstwatch" ./cmd/rstwatch)
sed "s#/usr/local/bin/rstwatch#$tmp/rstwatch#g" "$here/systemd/rstwatch.service" >"$tmp/rstwatch.service"
# verify exits 0 on unknown keys and bad values; any output is a finding.
out=$(systemd-analyze verify "$tmp/rstwatch.service" 2>&1) || fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify: $out"
echo "ok  systemd/rstwatch.service"

# The unit's ExecStart must still parse as serve flags.
"$tmp/rstwatch" serve --help >/dev/null 2>&1 || fail "rstwatch serve --help failed"
for f in $(sed -n 's/^#*ExecStart=[^ ]* serve //p' "$here/systemd/rstwatch.service" | tr ' ' '\n' | grep '^--' | sed 's/=.*//' | sort -u); do
	"$tmp/rstwatch" serve --help 2>&1 | grep -q -- "$f" || fail "the unit uses $f, which serve does not know"
done

python3 - "$here" "$tmp/rstwatch" <<'PY'
import json, re, subprocess, sys, yaml
here, binary = sys.argv[1], sys.argv[2]
def fail(msg):
    sys.exit("deploy/check.sh: " + msg)

docs = {}
for name in ("namespace.yaml", "daemonset.yaml", "podmonitor.yaml"):
    with open(f"{here}/kubernetes/{name}") as f:
        for d in yaml.safe_load_all(f):
            if not d:
                continue
            for k in ("apiVersion", "kind", "metadata"):
                if k not in d:
                    fail(f"{name}: a document without {k}")
            docs[d["kind"]] = d
    print(f"ok  kubernetes/{name}")

ds = docs.get("DaemonSet") or fail("no DaemonSet")
spec = ds["spec"]["template"]["spec"]
if ds["spec"]["selector"]["matchLabels"].items() - ds["spec"]["template"]["metadata"]["labels"].items():
    fail("DaemonSet selector does not match its pod labels")
if spec.get("hostPID") is not True:
    fail("DaemonSet needs hostPID: true (exited owners are told from the host's /proc)")
c = spec["containers"][0]
caps = set(c["securityContext"]["capabilities"]["add"])
need = {"BPF", "PERFMON"}
if c["securityContext"].get("runAsUser") != 0:
    need.add("DAC_READ_SEARCH")  # tracefs is mode 0700, owned by uid 0
if not need <= caps:
    fail(f"capabilities {sorted(caps)} lack one of {sorted(need)}")
if "SYS_ADMIN" in caps:
    fail("CAP_SYS_ADMIN is not needed")
if c["securityContext"].get("privileged"):
    fail("the container must not be privileged")
addr = [a for a in c["args"] if a.startswith("--metrics-addr")]
if not addr or "0.0.0.0" in addr[0] or addr[0].endswith("=:9464"):
    fail(f"--metrics-addr must name the pod IP, not every interface: {addr}")
mounts = {m["mountPath"] for m in c["volumeMounts"]}
for p in ("/sys/kernel/tracing", "/sys/kernel/btf"):
    if p not in mounts:
        fail(f"no mount of {p}")
vols = {v["name"]: v for v in spec["volumes"]}
for m in c["volumeMounts"]:
    if m["name"] not in vols:
        fail(f"mount {m['name']} has no volume")
    if not m.get("readOnly"):
        fail(f"mount {m['mountPath']} must be read-only")
# Exactly the host paths rstwatch reads: BTF, tracefs, the cgroup tree (to
# name cgroup ids) and the kubelet's pod and container log directories (to
# name pods and containers). Nothing else of the host, in particular not
# /var/lib/kubelet.
host = {v["hostPath"]["path"]: v["name"] for v in spec["volumes"] if "hostPath" in v}
want = {"/sys/kernel/btf", "/sys/kernel/tracing", "/sys/fs/cgroup", "/var/log/pods", "/var/log/containers"}
if set(host) != want:
    fail(f"host paths {sorted(host)}, want exactly {sorted(want)}")
at = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
root = [a.split("=", 1)[1] for a in c["args"] if a.startswith("--cgroup-root=")]
if root != [at.get(host["/sys/fs/cgroup"])]:
    fail(f"--cgroup-root {root} is not where the host's /sys/fs/cgroup is mounted ({at.get(host['/sys/fs/cgroup'])})")
logs = ([a.split("=", 1)[1] for a in c["args"] if a.startswith("--kubelet-logs=")] or ["/var/log"])[0]
for sub in ("pods", "containers"):
    if at.get(host[f"/var/log/{sub}"]) != f"{logs}/{sub}":
        fail(f"/var/log/{sub} is not mounted at {logs}/{sub}, where --kubelet-logs looks")
port = {p["name"]: p["containerPort"] for p in c["ports"]}["metrics"]
if ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] != str(port):
    fail("prometheus.io/port does not match the metrics port")
help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True).stdout
for a in c["args"]:
    if a.startswith("--") and a.split("=")[0] not in help_text:
        fail(f"DaemonSet passes {a}, which serve does not know")
pm = docs.get("PodMonitor") or fail("no PodMonitor")
if pm["spec"]["selector"]["matchLabels"] != ds["spec"]["selector"]["matchLabels"]:
    fail("PodMonitor selects other pods than the DaemonSet's")
print("ok  kubernetes: DaemonSet and PodMonitor agree")

with open(f"{here}/grafana/rstwatch.json") as f:
    dash = json.load(f)
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
if not exprs or not all("rstwatch_" in e for e in exprs):
    fail("grafana dashboard panels must query rstwatch_ metrics")
# The workload labels serve exports are on the dashboard.
for label in ("namespace", "pod", "container", "unit"):
    if not any(label in e for e in exprs):
        fail(f"no grafana panel uses the {label} label")
variables = {v["name"] for v in dash["templating"]["list"]}
for e in exprs:
    for var in re.findall(r"\$(\w+)", e):
        if var not in variables and not var.startswith("__"):
            fail(f"panel query uses ${var}, which the dashboard does not define")
print("ok  grafana/rstwatch.json")
PY
