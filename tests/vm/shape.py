# A stand-in family shape (distrotest-gen image build shape/<name>): two
# machines, "machine" and "peer", on VLAN 1, booted once. First the shape's
# facts as the guest sees them (how it booted, its family's guest side), the
# peer's root file system grown at boot (its disk is 2 GiB larger), then
# the two machines on the VLAN, then tests/vm/api.py on "machine", the same
# script as Debian's (every API group, a reboot that keeps state).
# Run by tests/e2e (DISTROTEST_VM_TESTS=1) with DT_SHAPE=el|fedora|ubuntu.
import os

shape = os.environ["DT_SHAPE"]
start_all()
for m in machines:
    # the backdoor comes up before the mounts of /boot and /home
    m.wait_for_unit("local-fs.target")


def fs_of(m, mount):
    """FSTYPE LABEL of the filesystem mounted at mount."""
    src = m.succeed(f"findmnt -n -e -o SOURCE {mount}").strip()
    fstype = m.succeed(f"findmnt -n -e -o FSTYPE {mount}").strip()
    label = m.succeed(f"blkid -s LABEL -o value {src.split('[')[0]}").strip()
    return fstype, label


def masked(m, unit):
    return m.succeed(f"systemctl is-enabled {unit} || true").strip() in ("masked", "masked-runtime")


with subtest(f"{shape} shape: booted as the family boots"):
    cmdline = machine.succeed("cat /proc/cmdline")
    t.assertEqual(machine.succeed("cat /etc/hostname").strip(), f"shape-{shape}")
    if shape == "el":
        t.assertEqual(fs_of(machine, "/"), ("xfs", "root"))
        t.assertEqual(fs_of(machine, "/boot"), ("xfs", "boot"))
        t.assertIn("root=UUID=", cmdline)
    elif shape == "fedora":
        t.assertEqual(fs_of(machine, "/"), ("btrfs", "fedora"))
        t.assertIn("subvol=/root", machine.succeed("findmnt -n -o OPTIONS /"))
        t.assertIn("subvol=/home", machine.succeed("findmnt -n -o OPTIONS /home"))
        t.assertEqual(fs_of(machine, "/boot"), ("ext4", "boot"))
        t.assertIn("rootflags=subvol=root", cmdline)
    else:
        t.assertEqual(fs_of(machine, "/"), ("ext4", "cloudimg-rootfs"))
        t.assertEqual(fs_of(machine, "/boot"), ("ext4", "BOOT"))
        boot = machine.succeed("findmnt -n -e -o SOURCE /boot").strip()
        t.assertEqual(machine.succeed(f"blkid -p -s PART_ENTRY_TYPE -o value {boot}").strip(),
                      "bc13c2ff-59e6-4262-a352-b275fd6f7172")  # XBOOTLDR
        machine.succeed("test -e /boot/vmlinuz && test -e /boot/initrd.img")

with subtest(f"{shape} shape: the family's guest side"):
    machine.require_unit_state("distrotest-backdoor.service", "active")
    if shape in ("el", "fedora"):
        # SELinux permissive on the kernel command line by default (the
        # stand-in has no SELinux policy: only the command line is checked).
        t.assertIn("enforcing=0", cmdline.split())
        # NetworkManager runs but leaves distrotest's NICs alone.
        machine.wait_for_unit("NetworkManager.service")
        devices = machine.succeed("nmcli -t -f TYPE,STATE device")
        t.assertNotIn("ethernet:connect", devices)
        t.assertIn("ethernet:unmanaged", devices)
        for unit in ("sshd.service", "dnf-makecache.timer", "NetworkManager-wait-online.service"):
            t.assertTrue(masked(machine, unit), f"{unit} is not masked")
        t.assertFalse(masked(machine, "ssh.service"), "ssh.service masked on a Red Hat family")
        # virtio_console: loaded (RHEL builds it as a module, the setup script
        # loads it) or built in (Debian's kernel, so on the stand-ins the
        # module path itself is not exercised).
        machine.succeed("test -e /sys/module/virtio_console || "
                        "grep -q virtio_console.ko /lib/modules/$(uname -r)/modules.builtin")
        if shape == "el":
            t.assertIn("rd.driver.pre=virtio_console", cmdline.split())
    else:
        t.assertNotIn("enforcing=0", cmdline.split())
        for unit in ("ssh.service", "systemd-networkd.service", "snapd.service"):
            t.assertTrue(masked(machine, unit), f"{unit} is not masked")
    if shape == "el":
        # RHEL kernels have no 9p: the stand-in's modules were removed.
        machine.fail("modinfo 9p")
        machine.fail("modinfo 9pnet_virtio")
        t.assertNotIn("9p", machine.succeed("cat /proc/filesystems"))
    else:
        machine.succeed("modinfo 9p")

with subtest(f"{shape} shape: the root file system grown at boot"):
    # tests/e2e gives the peer disk_grow = 2048 (diskSize = "+2G"): its
    # distrotest-growfs.service grew the last partition and the family's
    # root file system (xfs, btrfs or ext4) before the backdoor started.
    want = {"el": "xfs", "fedora": "btrfs", "ubuntu": "ext4"}[shape]
    t.assertEqual(peer.succeed("findmnt -n -o FSTYPE /").strip(), want)
    grown = os.path.join(os.path.dirname(__file__), "..", "nix", "root-grown.py")
    exec(compile(open(grown).read(), grown, "exec"), {**globals(), "vm": peer})
    t.assertIn("distrotest.growfs=1", peer.succeed("cat /proc/cmdline").split())

with subtest(f"{shape} shape: two machines on a VLAN"):
    t.assertEqual(peer.succeed("hostname").strip(), "peer")
    iface = machine.succeed("ip -o addr show to 192.168.1.0/24 | cut -d' ' -f2").strip()
    machine.wait_until_succeeds(f"ping -c 1 -W 2 -I {iface} peer", timeout=120)
    peer.succeed("systemd-run --unit=pong -- sh -c 'while true; do echo pong | nc -l -N 7000; done'")
    peer.wait_for_open_port(7000)
    machine.wait_until_succeeds("nc -4 -N -w 5 peer 7000 </dev/null | grep -q pong", timeout=120)
    machine.block()
    machine.fail(f"ping -c 1 -W 2 -I {iface} peer")
    machine.unblock()
    machine.wait_until_succeeds(f"ping -c 1 -W 2 -I {iface} peer", timeout=120)
    peer.shutdown()

# api.py's start_all() must not boot the peer again: it starts "machine" only.
api = os.path.join(os.path.dirname(__file__), "api.py")
exec(compile(open(api).read(), api, "exec"), {**globals(), "start_all": machine.start})
