#!/bin/bash
# mkharness.sh OUTDIR: builds a tiny prepared image directory for developing
# the machine package's VM tests quickly (boots in seconds under TCG). It is
# not what CI tests: CI points DISTROTEST_TEST_IMAGE at a real prepared image.
#
# It needs the host's Debian kernel (/boot/vmlinuz-* with its modules), bash
# and busybox. The initramfs speaks the guest contract well enough for the
# tests: backdoor on hvc0 (marker, bash), root's home on the virtio disk
# (ext2, so state survives a restart), distrotest.hostname/share/net
# parameters, user-net address 10.0.2.15, poweroff/reboot.
set -euo pipefail
out=${1:?usage: mkharness.sh OUTDIR}
kernel=$(ls /boot/vmlinuz-* | sort -V | tail -n1)
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver
[ -d "$moddir" ] || { echo "no modules for $kver in $moddir" >&2; exit 1; }
busybox=$(command -v busybox)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,root,mnt,etc,lib/modules,lib64,lib/x86_64-linux-gnu}

copy_with_libs() {
	cp -L "$1" "$root/bin/"
	ldd "$1" | awk '/=>/ {print $3} /^\s*\/lib64/ {print $1}' | while read -r lib; do
		[ -n "$lib" ] && cp -L --parents "$lib" "$root/" 2>/dev/null || true
	done
}
copy_with_libs /bin/bash
copy_with_libs "$busybox"
for app in $("$busybox" --list); do
	[ -e "$root/bin/$app" ] || ln -s busybox "$root/bin/$app"
done
rm -f "$root/bin/poweroff" "$root/bin/reboot" "$root/bin/sh"
ln -s busybox "$root/bin/sh"
printf '#!/bin/sh\nsync\nexec busybox poweroff -f\n' >"$root/bin/poweroff"
printf '#!/bin/sh\nsync\nexec busybox reboot -f\n' >"$root/bin/reboot"
chmod 755 "$root/bin/poweroff" "$root/bin/reboot"
echo 'root:x:0:0:root:/root:/bin/bash' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"

mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_console
virtio_blk failover net_failover virtio_net virtio-rng netfs fscache 9pnet 9pnet_virtio 9p
crc32c_generic crc16 mbcache jbd2 ext4"
: >"$root/modules"
for m in $mods; do
	f=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | cut -d: -f1 || true)
	[ -n "$f" ] || { echo "module $m not found (skipped)" >&2; continue; }
	cp "$moddir/$f" "$root/lib/modules/"
	basename "$f" >>"$root/modules"
done

cat >"$root/init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
for m in $(cat /modules); do insmod /lib/modules/$m 2>/dev/null; done
i=0; while [ ! -e /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 /dev/vda /root || echo "harness: cannot mount /dev/vda" >/dev/ttyS0
nic_by_mac() { for d in /sys/class/net/*; do [ "$(cat $d/address)" = "$1" ] && basename $d; done; }
ip link set lo up
u=$(nic_by_mac 52:54:00:12:34:56)
if [ -n "$u" ]; then ip link set "$u" up; ip addr add 10.0.2.15/24 dev "$u"; ip route add default via 10.0.2.2; fi
for p in $(cat /proc/cmdline); do
	case $p in
	distrotest.hostname=*) hostname "${p#*=}" ;;
	distrotest.share=*) v=${p#*=}; mkdir -p "${v#*:}"; mount -t 9p -o trans=virtio,version=9p2000.L "${v%%:*}" "${v#*:}" ;;
	distrotest.hosts=*) echo "${p#*=}" | tr , '\n' | while IFS=: read -r name n vls; do
			for vl in $(echo "$vls" | tr . ' '); do echo "192.168.$vl.$n $name" >>/etc/hosts; done
		done ;;
	distrotest.net=*) v=${p#*=}; vl=${v%%:*}; n=${v#*:}
		nic=$(nic_by_mac "$(printf '52:54:00:12:%02x:%02x' "$vl" "$n")")
		[ -n "$nic" ] && { ip link set "$nic" up; ip addr add "192.168.$vl.$n/24" dev "$nic"; } ;;
	esac
done
# The shell is on the virtio port org.distrotest.shell when QEMU has one,
# else on the virtconsole hvc0.
port=
i=0; while [ -z "$port" ] && [ ! -e /dev/hvc0 ] && [ $i -lt 100 ]; do
	for d in /sys/class/virtio-ports/*; do
		[ "$(cat "$d/name" 2>/dev/null)" = org.distrotest.shell ] && port=/dev/${d##*/}
	done
	sleep 0.1; i=$((i+1))
done
echo "harness: starting backdoor on ${port:-/dev/hvc0}" >/dev/ttyS0
if [ -n "$port" ]; then
	setsid sh -c "exec 0<>$port 1>&0 2>/dev/ttyS0; cd /root; echo 'Spawning backdoor root shell...'; HOME=/root PS1= exec /bin/bash --norc" &
else
	setsid sh -c 'exec </dev/hvc0 >/dev/hvc0 2>/dev/ttyS0; stty raw -echo; cd /root; echo "Spawning backdoor root shell..."; HOME=/root PS1="" exec /bin/bash --norc /dev/hvc0' &
fi
while :; do wait; sleep 1; done
INIT
chmod 755 "$root/init"

mkdir -p "$out"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out/initrd"
cp "$kernel" "$out/vmlinuz"
truncate -s 64M "$tmp/disk.raw"
mkfs.ext2 -q -F "$tmp/disk.raw"
qemu-img convert -f raw -O qcow2 "$tmp/disk.raw" "$out/disk.qcow2"
cat >"$out/manifest.json" <<JSON
{
  "version": 1,
  "distro": "harness",
  "release": "0",
  "system": "x86_64-linux",
  "disk": "disk.qcow2",
  "disk_format": "qcow2",
  "kernel": "vmlinuz",
  "initrd": "initrd",
  "root_device": "/dev/vda",
  "filesystem": "ext2",
  "kernel_params": ["console=ttyS0", "panic=-1", "quiet"],
  "strategy": "harness"
}
JSON
echo "$out"
