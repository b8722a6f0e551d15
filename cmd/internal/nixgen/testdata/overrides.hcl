# Per-release overrides of distro-level defaults, and settings left out.
distro "overrides" {
  strategy              = "initrd"
  rootfs                = "xfs"
  kernel                = "boot/vmlinuz-*"
  initrd                = "boot/initramfs-*.img"
  boot_filesystem       = "xfs"
  initrd_generator      = "dracut"
  network               = "networkmanager"
  guest_family          = "el"
  ssh_unit              = "sshd.service"
  selinux               = true
  virtio_console_module = true
  share_transport       = "virtiofs"

  release "9.6" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.6/images/x86_64/Rocky-9-GenericCloud-Base-9.6-20250531.0.x86_64.qcow2"
      sha256 = "0g8ad60a62hk0bxw6icavci3f0sjkc77h127vszcrb9wp1dq2wic"
    }
  }

  release "10.1" {
    strategy       = "disk"
    rootfs         = "ext4"
    root_partition = 3
    network        = "networkd"
    root_device    = "partuuid"
    selinux        = false
    not_offered    = "test: withdrawn"
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/10.1/images/aarch64/Rocky-10-GenericCloud-Base-10.1-20251116.0.aarch64.qcow2"
      sha256 = "sha256-q8ACPPj7QVUyE4+nNaebwlS6DRP015sDKglDHUOO420="
    }
  }

  release "1" {
    build { suite = "sid" }
  }
}
