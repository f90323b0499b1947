#!/bin/sh
# Builds the Debian package with dpkg-deb (make deb):
#   build.sh VERSION MANDIR OUTDIR
# from the checkout's make install (PREFIX=/usr, so that the unit's
# ExecStart= is /usr/sbin/mptcpgd), the unit moved to /lib/systemd/system,
# the generated man pages and bash completion in MANDIR, and the maintainer
# scripts beside this file. Prints the path of the .deb.
set -eu

version=$1 mandir=$2 outdir=$3
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
maintainer=${MAINTAINER:-mptcpgd developers <mptcpgd@users.noreply.github.com>}
arch=$(dpkg --print-architecture)

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/mptcpgd
mkdir -p "$root"

# The binary is the one make deb built; make install must not rebuild it.
make -s -C "$repo" -o build install DESTDIR="$root" PREFIX=/usr >/dev/null
# Debian ships binaries stripped of symbols; Go's own tables for stack
# traces stay.
strip --strip-unneeded "$root/usr/sbin/mptcpgd"
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/mptcpgd"
mkdir -p "$root/lib/systemd/system"
mv "$root/etc/systemd/system/mptcpgd.service" "$root/lib/systemd/system/"
rmdir "$root/etc/systemd/system" "$root/etc/systemd"
# The service's static user (see deploy/sysusers.d): a package's sysusers.d
# file lives under /usr, postinst applies it.
mkdir -p "$root/usr/lib/sysusers.d"
mv "$root/etc/sysusers.d/mptcpgd.conf" "$root/usr/lib/sysusers.d/"
rmdir "$root/etc/sysusers.d"

install -D -m 0644 "$mandir/mptcpgd.8" "$root/usr/share/man/man8/mptcpgd.8"
install -D -m 0644 "$mandir/mptcpgd.toml.5" "$root/usr/share/man/man5/mptcpgd.toml.5"
gzip -9n "$root/usr/share/man/man8/mptcpgd.8" "$root/usr/share/man/man5/mptcpgd.toml.5"
install -D -m 0644 "$mandir/mptcpgd.bash" "$root/usr/share/bash-completion/completions/mptcpgd"

doc=$root/usr/share/doc/mptcpgd
install -D -m 0644 "$here/copyright" "$doc/copyright"
install -D -m 0644 "$repo/configs/mptcpgd.toml" "$repo/configs/client.toml" "$repo/configs/server.toml" -t "$doc/examples"
# A native package's changelog, dated by the commit; dpkg-deb clamps the
# files' times to it too (SOURCE_DATE_EPOCH), so that two builds of one
# commit are the same.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}
export SOURCE_DATE_EPOCH
date=$(date -R -u -d "@$SOURCE_DATE_EPOCH")
printf 'mptcpgd (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- %s  %s\n' \
	"$version" "$(git -C "$repo" rev-parse --short HEAD)" "$maintainer" "$date" | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"

mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" -e "s|@SIZE@|$size|" \
	"$here/control.in" >"$root/DEBIAN/control"
# Every file under /etc is the administrator's: dpkg keeps their changes.
(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"
install -m 0755 "$here/postinst" "$here/prerm" "$here/postrm" "$root/DEBIAN/"
(cd "$root" && find usr lib etc -type f | sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod -R u+rwX,go+rX,go-w "$root"

mkdir -p "$outdir"
deb=$outdir/mptcpgd_${version}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
