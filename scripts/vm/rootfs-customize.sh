#!/bin/sh
# rootfs-customize.sh ROOT: mmdebstrap's customize hook for rootfs.sh.
set -eu
root=$1

echo guest >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tguest\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
: >"$root/etc/machine-id"
# Marks this machine as a throwaway test guest: internal/lab's Machine
# refuses to hand out the network namespace of any machine without it.
echo "mptcpgd test guest (scripts/vm/rootfs.sh)" >"$root/etc/mptcpgd-test-guest"

# The run's shares: the checkout (repo) and the run's script and binaries
# (work), read-only and cached, and where the results go (out).
mkdir -p "$root/mnt/repo" "$root/mnt/work" "$root/mnt/out"
cat >"$root/etc/fstab" <<'FSTAB'
LABEL=root  /          ext4  defaults,errors=remount-ro  0 1
repo        /mnt/repo  9p    trans=virtio,version=9p2000.L,msize=262144,ro,cache=loose,nofail  0 0
work        /mnt/work  9p    trans=virtio,version=9p2000.L,msize=262144,ro,cache=loose,nofail  0 0
out         /mnt/out   9p    trans=virtio,version=9p2000.L,msize=262144,nofail                 0 0
FSTAB

cat >"$root/etc/systemd/system/vmtest.service" <<'UNIT'
[Unit]
Description=Run the host's tests in this guest (/mnt/work/run.sh), then power off
After=multi-user.target
RequiresMountsFor=/mnt/work /mnt/out
ConditionPathExists=/mnt/work/run.sh
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/bin/sh /mnt/work/run.sh
TimeoutStartSec=infinity
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable vmtest.service
# No login prompt on the console: nobody logs in, and it would interleave with
# the test output there.
chroot "$root" systemctl mask serial-getty@ttyS0.service getty@tty1.service
# NetworkManager is there for the coexistence tests, which start it; the
# others expect a host without it (it would take over their links).
chroot "$root" systemctl disable NetworkManager.service NetworkManager-wait-online.service
