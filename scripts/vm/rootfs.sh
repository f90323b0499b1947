#!/bin/sh
# rootfs.sh KERNEL_PACKAGE OUT_DIR: builds, in an empty OUT_DIR, the
# systemd guest: a Debian 12 (bookworm) root filesystem made by mmdebstrap
# from this host's Debian apt sources, with the packages listed in
# guest-packages and KERNEL_PACKAGE, written as OUT_DIR/rootfs.img (ext4)
# beside the kernel (vmlinuz) and the initramfs (initrd.img) that boot it. The guest mounts the 9p shares `repo`
# (the checkout, read-only, on /mnt/repo), `work` (the run's script and
# binaries, read-only, on /mnt/work) and `out` (results, on /mnt/out) when
# they are given, runs /mnt/work/run.sh once multi-user.target is reached,
# then powers off (vmtest.service).
set -eu
kernel_pkg=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)

packages=$(sed -e 's/#.*//' "$here/guest-packages" | tr -s ' \n' ',,' | sed -e 's/^,//' -e 's/,$//')

# The host's Debian sources, when they carry bookworm (a Debian 12 host);
# otherwise the public mirrors.
mirrors=""
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] && grep -q 'debian' "$f" && grep -q 'bookworm' "$f" && mirrors="$mirrors $f"
done
if [ -z "$mirrors" ]; then
	set -- "deb http://deb.debian.org/debian bookworm main" \
		"deb http://deb.debian.org/debian bookworm-updates main" \
		"deb http://deb.debian.org/debian-security bookworm-security main"
else
	# shellcheck disable=SC2086
	set -- $mirrors
fi

root=$out/root

mmdebstrap --quiet --variant=minbase --include="$packages,$kernel_pkg" \
	--customize-hook="sh $here/rootfs-customize.sh \"\$1\"" \
	bookworm "$root" "$@"

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
# Room for what the tests install (the daemon, packages from other issues).
size=$(($(du -sm "$root" | cut -f1) + 1024))
mkfs.ext4 -q -L root -d "$root" "$out/rootfs.img" "${size}M"
rm -rf "$root"
