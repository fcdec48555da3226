#!/bin/busybox sh
# Ember initramfs /init (PID 1 until switch_root).
#
# Loads the virtio modules, mounts the read-only runtime disk (ext4 label
# `ember-runtime`) at /newroot and the user's rootfs (any other /dev/vd* ext4
# disk) at /newroot/rootfs, then hands PID 1 to the guest agent living on the
# runtime disk. PID 1 must never exit (that panics the kernel): every fatal
# error prints one line to the console and powers the VM off.

/bin/busybox --install -s /bin
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

RUNTIME_LABEL=ember-runtime
ROOTFS_LABEL=ember-root
MODULES="virtio_ring virtio virtio_mmio virtio_blk virtio_console virtio_rng failover net_failover virtio_net"

log() {
    u=?
    read -r u _ < /proc/uptime 2>/dev/null
    echo "ember-init: [$u] $*"
}

die() {
    echo "EMBER-INIT FATAL: $*"
    sync
    poweroff -f
    # Not reached unless power-off failed; never return from PID 1.
    reboot -f
    while true; do sleep 3600; done
}

mount -t proc proc /proc || die "cannot mount /proc"
mount -t sysfs sysfs /sys || die "cannot mount /sys"
mount -t devtmpfs devtmpfs /dev || die "cannot mount /dev"

for m in $MODULES; do
    f=/lib/modules/$m.ko
    [ -e "$f" ] || continue  # built into this kernel
    out=$(insmod "$f" 2>&1) || case "$out" in
        *"File exists"*|*"already"*) ;;
        *) log "insmod $m: $out" ;;
    esac
done

ip link set lo up || log "cannot bring up lo"

# Every VM has one NIC; its host side decides whether packets go anywhere (an unconnected
# port, or user-mode NAT for egress). Configure it the way user-mode NAT expects, always:
# a clone restored with egress from an image booted without it then needs no change.
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 10 ]; do sleep 0.1; i=$((i + 1)); done
if [ -e /sys/class/net/eth0 ]; then
    { ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2; } \
        || log "cannot configure eth0"
else
    log "no network interface"
fi

# The disks show up as soon as virtio_blk probes them; wait up to ~5 s.
runtime_dev=
i=0
while [ $i -lt 50 ]; do
    runtime_dev=$(findfs "LABEL=$RUNTIME_LABEL" 2>/dev/null) && [ -b "$runtime_dev" ] && break
    runtime_dev=
    sleep 0.1
    i=$((i + 1))
done
[ -n "$runtime_dev" ] || die "no runtime disk (ext4 label $RUNTIME_LABEL) among: $(echo /dev/vd*)"

mount -t ext4 -o ro "$runtime_dev" /newroot || die "cannot mount runtime disk $runtime_dev read-only"

# The user's rootfs: prefer the ember-root label, else the first other ext4 disk.
rootfs_dev=
cand=$(findfs "LABEL=$ROOTFS_LABEL" 2>/dev/null)
for dev in $cand /dev/vd*; do
    [ -b "$dev" ] || continue
    [ "$dev" = "$runtime_dev" ] && continue
    if mount -t ext4 -o rw "$dev" /newroot/rootfs 2>/dev/null; then
        rootfs_dev=$dev
        break
    fi
done

mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /newroot/tmp || die "cannot mount /newroot/tmp"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || die "cannot mount /newroot/run"

if [ -n "$rootfs_dev" ]; then
    R=/newroot/rootfs
    mkdir -p $R/proc $R/sys $R/dev $R/tmp $R/run || die "cannot create mountpoints in the rootfs"
    mount -t proc proc $R/proc || die "cannot mount rootfs/proc"
    mount -t sysfs sysfs $R/sys || die "cannot mount rootfs/sys"
    mount -t devtmpfs devtmpfs $R/dev || die "cannot mount rootfs/dev"
    mkdir -p $R/dev/pts
    mount -t devpts -o ptmxmode=0666,mode=0620 devpts $R/dev/pts || die "cannot mount rootfs/dev/pts"
    [ -e $R/dev/ptmx ] || ln -s pts/ptmx $R/dev/ptmx
    mount -t tmpfs -o mode=1777 tmpfs $R/tmp || die "cannot mount rootfs/tmp"
    mount -t tmpfs -o mode=0755 tmpfs $R/run || die "cannot mount rootfs/run"
    # Names resolve through user-mode NAT's DNS proxy. A symlink (systemd-resolved's) would
    # point into the empty /run: replace it with a file.
    mkdir -p $R/etc
    [ -L $R/etc/resolv.conf ] && rm -f $R/etc/resolv.conf
    echo "nameserver 10.0.2.3" > $R/etc/resolv.conf || log "cannot write rootfs /etc/resolv.conf"
    log "rootfs $rootfs_dev mounted at /rootfs"
else
    log "no rootfs disk; continuing without /rootfs"
fi

# The initramfs's own /proc /sys /dev move under the new root.
mount --move /proc /newroot/proc || die "cannot move /proc"
mount --move /sys /newroot/sys || die "cannot move /sys"
mount --move /dev /newroot/dev || die "cannot move /dev"
mkdir -p /newroot/dev/pts
mount -t devpts -o ptmxmode=0666,mode=0620 devpts /newroot/dev/pts || die "cannot mount /dev/pts"

[ -x /newroot/usr/bin/python3 ] || die "runtime disk has no /usr/bin/python3"
[ -d /newroot/opt/ember/ember/guest ] || die "runtime disk has no /opt/ember/ember/guest"

read -r up _ < /newroot/proc/uptime
echo "EMBER-INIT ok uptime=$up runtime=$runtime_dev rootfs=${rootfs_dev:-none}"

exec switch_root /newroot /usr/bin/env PYTHONPATH=/opt/ember PYTHONDONTWRITEBYTECODE=1 \
    /usr/bin/python3 -m ember.guest.agent
die "switch_root failed"
