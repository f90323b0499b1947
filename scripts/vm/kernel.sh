#!/bin/sh
# kernel.sh PACKAGE OUT_DIR: downloads a Debian kernel image package with
# apt-get download and unpacks it with dpkg-deb -x into OUT_DIR/root (boot/
# and lib/modules/RELEASE/), then runs depmod there so that modprobe finds
# the modules. Nothing is installed on this machine.
set -eu
pkg=$1
out=$2

cd "$out"
# apt drops privileges to _apt for downloads; let it write here.
if id _apt >/dev/null 2>&1; then chown _apt "$out"; fi
apt-get download -q "$pkg"
chown root "$out"
deb=$(ls ./*.deb)
dpkg-deb -x "$deb" root
rm -f "$deb"
# Merged /usr packages ship usr/lib/modules.
if [ ! -d root/lib/modules ] && [ -d root/usr/lib/modules ]; then
	mkdir -p root/lib
	mv root/usr/lib/modules root/lib/modules
fi
release=$(ls root/lib/modules)
depmod -b "$out/root" "$release"
