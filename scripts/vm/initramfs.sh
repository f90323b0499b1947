#!/bin/sh
# initramfs.sh KERNEL_ROOT OUT: builds the kernel-matrix initramfs for the
# kernel unpacked at KERNEL_ROOT (boot/ and lib/modules/VERSION/, depmod
# done): a static busybox, the init beside this script and, uncompressed, the
# modules that mounting a 9p share needs, in load order.
set -eu
root=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
kver=$(ls "$root/lib/modules")
# busybox-static's: the initramfs has no libc.
busybox=/bin/busybox

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/modules"
cp "$busybox" "$tmp/bin/busybox"
cp "$here/init" "$tmp/init"
chmod 0755 "$tmp/init"

: >"$tmp/modules/order"
for m in virtio_pci 9pnet_virtio 9p; do
	modprobe -d "$root" -S "$kver" --show-depends "$m" | while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		name=$(basename "$path")
		name=${name%.xz}
		name=${name%.zst}
		grep -qx "$name" "$tmp/modules/order" && continue
		case "$path" in
		*.xz) xz -dc "$path" >"$tmp/modules/$name" ;;
		*.zst) zstd -qdc "$path" >"$tmp/modules/$name" ;;
		*) cp "$path" "$tmp/modules/$name" ;;
		esac
		echo "$name" >>"$tmp/modules/order"
	done
done

(cd "$tmp" && find . | cpio -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
