#!/usr/bin/env bash
# Run rstwatch's kernel tests on Debian guest kernels (under qemu) and on the
# host kernel, and print a pass/fail table per kernel and package.
#
#   kernels/run.sh [pkg ...]      default packages: ./tracer/
#
# Each package's tests are compiled into a static test binary that loads BPF
# and provokes TCP resets on loopback. Guests boot straight into
# kernels/init, which runs the binaries and prints one
# "RSTWATCH-KTEST <name> PASS|FAIL exit=<n>" line each.
#
# Environment (all optional):
#   RSTWATCH_GUEST_KERNELS  space-separated guest kernels: a Debian series
#                           ("6.1", "6.12": newest cloud-amd64 build) or an
#                           exact package name; "" for host only. Default 6.1
#   RSTWATCH_HOST_TESTS     1 (default) to also run on the host kernel, 0 not
#   RSTWATCH_KERNEL_CACHE   where kernels and build output go
#                           (default <repo>/.kernels, which git ignores)
#   RSTWATCH_ACCEL          auto (default: kvm if it works, else tcg), kvm, tcg
#   RSTWATCH_VM_TIMEOUT     seconds one guest may run in total (default 600)
#   RSTWATCH_TEST_TIMEOUT   -test.timeout per test binary (default 300s)
#   RSTWATCH_TEST_ARGS      extra test binary flags, e.g. "-test.run=Reset"
#
# Needs root (BPF, apt-get). Installs qemu-system-x86 itself if missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
guest_kernels=${RSTWATCH_GUEST_KERNELS-6.1}
host_tests=${RSTWATCH_HOST_TESTS:-1}
cache=${RSTWATCH_KERNEL_CACHE:-$repo/.kernels}
accel=${RSTWATCH_ACCEL:-auto}
vm_timeout=${RSTWATCH_VM_TIMEOUT:-600}
test_timeout=${RSTWATCH_TEST_TIMEOUT:-300s}
read -r -a extra_args <<<"${RSTWATCH_TEST_ARGS:-}"

# Variables the tests see on every kernel. RSTWATCH_REQUIRE_BPF turns "no
# BPF here" skips into failures, so a broken setup cannot pass quietly.
test_env=(RSTWATCH_KERNEL_TEST=1 RSTWATCH_REQUIRE_BPF=1)

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() {
	printf 'run.sh: error: %s\n' "$*" >&2
	exit 1
}

if [[ $# -eq 0 ]]; then
	set -- ./tracer/
fi
start=$SECONDS
cd "$repo"

apt_updated=0
apt_update_once() {
	if [[ $apt_updated -eq 0 ]]; then
		log "apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		apt_updated=1
	fi
}

need_qemu() {
	command -v qemu-system-x86_64 >/dev/null && return
	[[ $(id -u) -eq 0 ]] || die "qemu-system-x86_64 missing; install qemu-system-x86 (needs root)"
	log "installing qemu-system-x86"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >&2; then
		apt_update_once
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >&2 ||
			die "cannot install qemu-system-x86"
	fi
}

# resolve_kernel SPEC prints the path of a cached vmlinuz for SPEC,
# downloading and unpacking the Debian package on first use.
resolve_kernel() {
	local spec=$1 pkg="" dest vmlinuz deb tmp
	if [[ $spec == linux-image-* ]]; then
		pkg=$spec
	else
		# "6.1" must not match 6.12, hence the escaped dot and digit.
		local re="^linux-image-${spec//./\\.}\\.[0-9].*-cloud-amd64-unsigned\$"
		pkg=$(apt-cache search --names-only "$re" 2>/dev/null | awk '{print $1}' | sort -V | tail -n1)
		if [[ -z $pkg ]]; then
			apt_update_once
			pkg=$(apt-cache search --names-only "$re" | awk '{print $1}' | sort -V | tail -n1)
		fi
		if [[ -z $pkg ]]; then
			# No package index (offline?): fall back to what is cached.
			vmlinuz=$(find "$cache/kernels" -path "*/linux-image-${spec}.[0-9]*/boot/vmlinuz-*" 2>/dev/null | sort -V | tail -n1)
			[[ -n $vmlinuz ]] || die "no Debian cloud kernel package found for '$spec'"
			echo "$vmlinuz"
			return
		fi
	fi
	dest=$cache/kernels/$pkg
	vmlinuz=$(find "$dest/boot" -name 'vmlinuz-*' 2>/dev/null | head -n1)
	if [[ -n $vmlinuz ]]; then
		echo "$vmlinuz"
		return
	fi
	log "downloading $pkg"
	tmp=$(mktemp -d "$cache/dl.XXXXXX")
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || {
		rm -rf "$tmp"
		die "apt-get download $pkg failed"
	}
	deb=$(find "$tmp" -name '*.deb' | head -n1)
	mkdir -p "$tmp/x"
	# Only /boot is needed: the cloud kernels build in everything the tests
	# use (virtio, serial console, BTF, BPF, kprobes), so modules stay out.
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" ./boot
	rm -rf "$dest"
	mkdir -p "$(dirname "$dest")"
	mv "$tmp/x" "$dest"
	rm -rf "$tmp"
	vmlinuz=$(find "$dest/boot" -name 'vmlinuz-*' | head -n1)
	[[ -n $vmlinuz ]] || die "$pkg contains no vmlinuz"
	echo "$vmlinuz"
}

pick_accel() {
	case $accel in
	kvm | tcg) return ;;
	auto) ;;
	*) die "RSTWATCH_ACCEL must be auto, kvm or tcg, not '$accel'" ;;
	esac
	accel=tcg
	if [[ -r /dev/kvm && -w /dev/kvm ]] &&
		echo quit | timeout 20 qemu-system-x86_64 -accel kvm -machine none -nodefaults \
			-display none -monitor stdio >/dev/null 2>&1; then
		accel=kvm
	fi
}

# Results are kept as "kernel|package|result" rows.
rows=()
add_row() { rows+=("$1|$2|$3"); }

work=$cache/build
rm -rf "$work"
mkdir -p "$work/tests"

# --- build ---------------------------------------------------------------
names=() # test binary names, parallel to labels/dirs
labels=()
dirs=()
for arg in "$@"; do
	if ! listing=$(go list -f '{{.ImportPath}}|{{.Dir}}|{{len .TestGoFiles}}|{{len .XTestGoFiles}}' "$arg" 2>"$work/golist.err"); then
		cat "$work/golist.err" >&2
		log "cannot list package $arg"
		add_row build "$arg" BUILD-FAIL
		continue
	fi
	while IFS='|' read -r ipath dir ntest nxtest; do
		[[ -n $ipath ]] || continue
		label=./$(realpath --relative-to="$repo" "$dir")
		if [[ $((ntest + nxtest)) -eq 0 ]]; then
			log "$label has no tests"
			add_row build "$label" NO-TESTS
			continue
		fi
		name=${ipath#github.com/rstwatch/rstwatch/}
		name=${name//\//_}
		log "building tests of $label"
		mkdir -p "$work/tests/$name"
		if ! CGO_ENABLED=0 go test -c -ldflags='-s -w' -o "$work/tests/$name/$name.test" "$ipath"; then
			add_row build "$label" BUILD-FAIL
			continue
		fi
		names+=("$name")
		labels+=("$label")
		dirs+=("$dir")
	done <<<"$listing"
done

if [[ ${#names[@]} -gt 0 ]]; then
	CGO_ENABLED=0 go build -o "$work/init" ./kernels/init
	CGO_ENABLED=0 go build -o "$work/mkinitramfs" ./kernels/mkinitramfs
	printf '%s\n' "${test_env[@]}" TMPDIR=/tmp >"$work/ktest.env"
	printf '%s\n' "-test.timeout=$test_timeout" ${extra_args[@]+"${extra_args[@]}"} >"$work/ktest.args"
	specs=(/init="$work/init" /etc/ktest.env="$work/ktest.env" /etc/ktest.args="$work/ktest.args")
	for i in "${!names[@]}"; do
		n=${names[$i]}
		specs+=("/tests/$n/$n.test=$work/tests/$n/$n.test")
		if [[ -d ${dirs[$i]}/testdata ]]; then
			specs+=("/tests/$n/testdata=${dirs[$i]}/testdata")
		fi
	done
	"$work/mkinitramfs" -o "$work/initramfs.cpio" "${specs[@]}"
	log "initramfs: $(du -h "$work/initramfs.cpio" | cut -f1)"
fi

# --- guests --------------------------------------------------------------
if [[ ${#names[@]} -gt 0 && -n ${guest_kernels// /} ]]; then
	need_qemu
	pick_accel
	cpu=max
	[[ $accel == kvm ]] && cpu=host
	log "accelerator: $accel"
	for spec in $guest_kernels; do
		label=$spec
		if ! vmlinuz=$(resolve_kernel "$spec"); then
			for l in "${labels[@]}"; do add_row "$label" "$l" NO-KERNEL; done
			continue
		fi
		consolelog=$work/console-${spec//\//_}.log
		log "booting $label: $vmlinuz"
		vm_start=$SECONDS
		set +e
		timeout --kill-after=10 "$vm_timeout" qemu-system-x86_64 \
			-accel "$accel" -cpu "$cpu" -m 1024 -smp 2 \
			-nodefaults -no-reboot -display none -nic none \
			-serial stdio -monitor none \
			-kernel "$vmlinuz" -initrd "$work/initramfs.cpio" \
			-append "console=ttyS0 panic=-1 quiet mitigations=off" \
			</dev/null 2>&1 | sed -u 's/\r$//' | tee "$consolelog" | sed -u "s/^/[$label] /"
		vm_rc=${PIPESTATUS[0]}
		set -e
		release=$(sed -n 's/^RSTWATCH-KTEST-BEGIN kernel=//p' "$consolelog" | head -n1)
		[[ -n $release ]] && label="$spec ($release)"
		log "$label finished in $((SECONDS - vm_start))s (qemu exit $vm_rc)"
		for i in "${!names[@]}"; do
			r=$(sed -n "s/^RSTWATCH-KTEST ${names[$i]} \(PASS\|FAIL\) exit=.*/\1/p" "$consolelog" | head -n1)
			if [[ -z $r ]]; then
				if [[ $vm_rc -eq 124 || $vm_rc -eq 137 ]]; then r=TIMEOUT; else r=NO-RESULT; fi
			fi
			add_row "$label" "${labels[$i]}" "$r"
		done
	done
fi

# --- host ----------------------------------------------------------------
if [[ ${#names[@]} -gt 0 && $host_tests == 1 ]]; then
	[[ $(id -u) -eq 0 ]] || log "warning: not root, BPF tests will fail on the host"
	label="host ($(uname -r))"
	for i in "${!names[@]}"; do
		n=${names[$i]}
		log "running $n on the host"
		set +e
		# Like go test, run in the package directory so testdata is found.
		(cd "${dirs[$i]}" && env "${test_env[@]}" "$work/tests/$n/$n.test" \
			-test.v -test.count=1 "-test.timeout=$test_timeout" ${extra_args[@]+"${extra_args[@]}"}) 2>&1 |
			sed -u "s/^/[host] /"
		rc=${PIPESTATUS[0]}
		set -e
		if [[ $rc -eq 0 ]]; then r=PASS; else r=FAIL; fi
		add_row "$label" "${labels[$i]}" "$r"
	done
fi

# --- summary -------------------------------------------------------------
pass=0 fail=0 skip=0
w1=6 w2=7
for row in "${rows[@]}"; do
	IFS='|' read -r k p _ <<<"$row"
	((${#k} > w1)) && w1=${#k}
	((${#p} > w2)) && w2=${#p}
done
echo
printf '%-*s | %-*s | %s\n' "$w1" kernel "$w2" package result
printf '%s-+-%s-+-%s\n' "$(printf '%*s' "$w1" '' | tr ' ' -)" "$(printf '%*s' "$w2" '' | tr ' ' -)" ------
for row in "${rows[@]}"; do
	IFS='|' read -r k p r <<<"$row"
	printf '%-*s | %-*s | %s\n' "$w1" "$k" "$w2" "$p" "$r"
	case $r in
	PASS) pass=$((pass + 1)) ;;
	NO-TESTS) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)) ;;
	esac
done
echo "kernel tests took $((SECONDS - start))s"
echo "$pass passed, $fail failed, $skip skipped"
[[ $fail -eq 0 && $pass -gt 0 ]]
