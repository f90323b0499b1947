#!/bin/sh
# Installs what building, testing and the demo need on Debian, if missing:
# iproute2 (ip, tc, ss, nstat), ping, systemd-analyze (unit checks), Go, and
# the programs the tests of mptcpgd run wrap (python3, nc.openbsd, curl,
# iperf3, a C compiler, strace to check its system calls), mandoc and
# lintian (the manual pages and the Debian package); with --vm also
# what the qemu guests of `make test-kernels` and `make test-guest` need
# (scripts/vm). Runs as root; does nothing when everything is there.
set -eu

missing=""
need() { command -v "$1" >/dev/null 2>&1 || missing="$missing $2"; }
need ip iproute2
need tc iproute2
need nstat iproute2
need ping iputils-ping
need systemd-analyze systemd
need make make
need gcc gcc
need nft nftables
need python3 python3
need nc.openbsd netcat-openbsd
need curl curl
need iperf3 iperf3
need setpriv util-linux
need strace strace
need setcap libcap2-bin
need mandoc mandoc
need dpkg-deb dpkg
need lintian lintian
if [ "${1:-}" = --vm ]; then
	need qemu-system-x86_64 qemu-system-x86
	need mmdebstrap mmdebstrap
	need cpio cpio
	need mkfs.ext4 e2fsprogs
	need depmod kmod
	need xz xz-utils
	need zstd zstd
	[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx insmod && ! ldd /bin/busybox >/dev/null 2>&1 ||
		missing="$missing busybox-static"
fi

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps: missing packages:$missing; run as root to install them" >&2
		exit 1
	fi
	echo "deps: installing$missing"
	apt-get update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
	echo "deps: Go is missing: install Go 1.26 or later to /usr/local/go (https://go.dev/dl/)" >&2
	exit 1
fi
