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
#   RSTWATCH_GUEST_TOOLS    host programs copied into guests with their
#                           libraries, as TOOL:DEBIAN-PACKAGE (default
#                           "ip:iproute2"; the package is installed if the
#                           tool is missing)
#   RSTWATCH_GUEST_MODULES  kernel modules loaded in guests before the tests,
#                           comma-separated (default "veth,bridge")
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
guest_tools=${RSTWATCH_GUEST_TOOLS-ip:iproute2}
guest_modules=${RSTWATCH_GUEST_MODULES-veth,bridge}

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

# apt_install PKG... installs Debian packages, refreshing the package
# index once if the first attempt fails (a fresh machine may have none).
apt_install() {
	[[ $(id -u) -eq 0 ]] || die "need root to install $*"
	log "installing $*"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2; then
		apt_update_once
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2 ||
			die "cannot install $*"
	fi
}

# resolve_kernel SPEC prints the unpacked package directory of the guest
# kernel for SPEC, downloading and unpacking it on first use.
resolve_kernel() {
	local spec=$1 pkg="" dest deb tmp
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
			dest=$(find "$cache/kernels" -maxdepth 2 -path "*/linux-image-${spec}.[0-9]*/.unpacked" 2>/dev/null |
				sort -V | tail -n1)
			[[ -n $dest ]] || die "no Debian cloud kernel package found for '$spec'"
			dirname "$dest"
			return
		fi
	fi
	dest=$cache/kernels/$pkg
	if [[ -e $dest/.unpacked ]]; then
		echo "$dest"
		return
	fi
	log "downloading $pkg"
	mkdir -p "$cache/kernels"
	tmp=$(mktemp -d "$cache/kernels/.dl.XXXXXX")
	(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) || {
		rm -rf "$tmp"
		die "apt-get download $pkg failed"
	}
	deb=$(find "$tmp" -name '*.deb' | head -n1)
	# Unpacked, not installed: the host's own kernel setup stays untouched.
	dpkg -x "$deb" "$tmp/x"
	[[ -n $(find "$tmp/x/boot" -name 'vmlinuz-*') ]] || {
		rm -rf "$tmp"
		die "$pkg contains no vmlinuz"
	}
	# The package leaves modules.dep to depmod at install time; make it
	# here so mkinitramfs can resolve module dependencies.
	command -v depmod >/dev/null || apt_install kmod
	local release
	for release in "$tmp"/x/lib/modules/*; do
		depmod -b "$tmp/x" "${release##*/}" || die "depmod for $pkg failed"
	done
	touch "$tmp/x/.unpacked"
	rm -rf "$dest"
	mv "$tmp/x" "$dest"
	rm -rf "$tmp"
	echo "$dest"
}

# tool_specs TOOL... prints initramfs specs for host programs and the shared
# libraries they load, kept at their host paths so the guest's dynamic
# loader finds them without an ld.so.cache.
tool_specs() {
	local t bin lib
	for t in "$@"; do
		bin=$(command -v "$t") || die "guest tool $t not found"
		bin=$(realpath "$bin")
		echo "/usr/bin/$t=$bin"
		ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
			echo "$lib=$lib"
		done
	done
}

# qemu_cmd ACCEL VMLINUZ INITRAMFS CMDLINE-EXTRA sets qemu to the command
# line that boots a guest with its serial console on stdout.
qemu_cmd() {
	local cpu=max
	[[ $1 == kvm ]] && cpu=host
	qemu=(qemu-system-x86_64
		-accel "$1" -cpu "$cpu" -m 1024 -smp 2
		-nodefaults -no-reboot -display none -nic none
		-serial stdio -monitor none
		-kernel "$2" -initrd "$3"
		-append "console=ttyS0 panic=-1 quiet mitigations=off $4")
}

# pick_accel VMLINUZ INITRAMFS settles on kvm or tcg. An openable /dev/kvm is not
# enough: nested setups can abort on CPU setup or hang in early boot, so a
# real boot that powers off in init is the test. It costs about a second
# where KVM works and at most the probe timeout where it does not.
pick_accel() {
	case $accel in
	kvm | tcg) return ;;
	auto) ;;
	*) die "RSTWATCH_ACCEL must be auto, kvm or tcg, not '$accel'" ;;
	esac
	accel=tcg
	[[ -r /dev/kvm && -w /dev/kvm ]] || return 0
	local out
	qemu_cmd kvm "$1" "$2" rstwatch.probe=1
	out=$(timeout --kill-after=2 8 "${qemu[@]}" </dev/null 2>&1) || true
	if [[ $out == *RSTWATCH-KTEST-PROBE-OK* ]]; then
		accel=kvm
	else
		log "/dev/kvm exists but cannot boot a guest; using tcg"
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

# The tests may run the guest tools on the host too, so make sure they are
# there even for a host-only run.
tools=()
if [[ ${#names[@]} -gt 0 ]]; then
	for tp in $guest_tools; do
		t=${tp%%:*}
		if ! command -v "$t" >/dev/null; then
			[[ $tp == *:* ]] || die "guest tool $t not found and no package given"
			apt_install "${tp#*:}"
		fi
		tools+=("$t")
	done
fi

# --- guests --------------------------------------------------------------
if [[ ${#names[@]} -gt 0 && -n ${guest_kernels// /} ]]; then
	command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86
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
	if [[ ${#tools[@]} -gt 0 ]]; then
		mapfile -t -O "${#specs[@]}" specs < <(tool_specs "${tools[@]}" | sort -u)
	fi

	kernel_specs=()
	kdirs=()
	for spec in $guest_kernels; do
		if kdir=$(resolve_kernel "$spec"); then
			kernel_specs+=("$spec")
			kdirs+=("$kdir")
		else
			for l in "${labels[@]}"; do add_row "$spec" "$l" NO-KERNEL; done
		fi
	done

	for k in "${!kernel_specs[@]}"; do
		spec=${kernel_specs[$k]}
		kdir=${kdirs[$k]}
		vmlinuz=$(find "$kdir/boot" -name 'vmlinuz-*' | head -n1)
		release=${vmlinuz##*/vmlinuz-}
		label=$spec
		consolelog=$work/console-$spec.log
		initramfs=$work/initramfs-$spec.cpio
		# Modules must match the guest kernel, so each guest gets its own
		# image; everything else in it is shared.
		if ! "$work/mkinitramfs" -o "$initramfs" -moddir "$kdir/lib/modules/$release" \
			-modules "$guest_modules" "${specs[@]}"; then
			for l in "${labels[@]}"; do add_row "$label" "$l" NO-IMAGE; done
			continue
		fi
		if [[ $accel == auto ]]; then
			pick_accel "$vmlinuz" "$initramfs"
			log "accelerator: $accel"
		fi
		log "booting $label: $release, initramfs $(du -h "$initramfs" | cut -f1)"
		vm_start=$SECONDS
		set +e
		qemu_cmd "$accel" "$vmlinuz" "$initramfs" ""
		timeout --kill-after=10 "$vm_timeout" "${qemu[@]}" </dev/null 2>&1 |
			sed -u 's/\r$//' | tee "$consolelog" | sed -u "s/^/[$label] /"
		vm_rc=${PIPESTATUS[0]}
		set -e
		label="$spec ($release)"
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
