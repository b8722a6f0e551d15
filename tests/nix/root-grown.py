# Checks that the root partition reaches the end of the grown disk and that
# the root file system fills the partition (diskSize; lib/nodes.nix and the
# guest's distrotest-growfs.service). Part of a test script: `vm` exists.
# Prints the sizes for the log.
vm.wait_for_unit("distrotest-growfs.service")
root_dev = vm.succeed("findmnt -no SOURCE /").strip().split("[")[0]
part = vm.succeed(f"basename $(readlink -f {root_dev})").strip()
disk = vm.succeed(f"basename $(readlink -f /sys/class/block/{part}/..)").strip()
disk_sectors = int(vm.succeed(f"cat /sys/class/block/{disk}/size"))
start = int(vm.succeed(f"cat /sys/class/block/{part}/start"))
size = int(vm.succeed(f"cat /sys/class/block/{part}/size"))
fs_bytes = int(vm.succeed("df -B1 --output=size / | tail -1"))
print(f"disk {disk_sectors * 512} bytes, root partition {part} {start}+{size} sectors, file system {fs_bytes} bytes")
# GPT keeps 33 sectors for its backup at the end; partitions are aligned to 1 MiB
t.assertGreaterEqual(start + size, disk_sectors - 33 - 2048, "the root partition does not reach the end of the disk")
t.assertGreater(fs_bytes, 0.9 * size * 512, "the root file system does not fill its partition")
