#!/usr/bin/env bash
# Refresh the vendored libbpf headers from Debian's libbpf-dev package, pinned
# to the version below, and make them self-contained: they include each other
# with quotes, never from the system, so `make generate` needs only clang.
# vmlinux.h is rstwatch's own trimmed CO-RE header and is not touched.
#
# Usage: bpf/headers/update.sh   (needs apt-get and dpkg-deb; no root needed)
set -euo pipefail

LIBBPF_DEB_VERSION="1:1.1.2-0+deb12u1" # libbpf v1.1.2, as Debian bookworm ships it
HEADERS=(bpf_core_read.h bpf_endian.h bpf_helper_defs.h bpf_helpers.h bpf_tracing.h)

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
chmod 777 "$tmp" # apt-get download writes as the _apt user where it can
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "libbpf-dev=$LIBBPF_DEB_VERSION" >/dev/null)
dpkg-deb -x "$tmp"/libbpf-dev_*.deb "$tmp/x"
for h in "${HEADERS[@]}"; do
	# <bpf/foo.h> -> "foo.h": the copies sit side by side.
	sed -E 's|#include <bpf/([a-z_]+\.h)>|#include "\1"|' "$tmp/x/usr/include/bpf/$h" >"$here/$h"
done
echo "$LIBBPF_DEB_VERSION" >"$here/LIBBPF_VERSION"
if grep -n '#include <' "${HEADERS[@]/#/$here/}"; then
	echo "update.sh: a vendored header still includes a system header (above)" >&2
	exit 1
fi
echo "libbpf headers refreshed from libbpf-dev $LIBBPF_DEB_VERSION"
