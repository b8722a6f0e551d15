distro "Fedora" {
  strategy       = "ssh"
  rootfs         = "zfs"
  root_partition = 0
  kernel         = "/boot/vmlinuz-*"
  initrd         = "boot/initramfs-[.img"
  network        = "ifupdown"
  quirks         = ["selinux", "systemd-resolved"]

  release "rawhide" {
    codename = "Rawhide"
    image "x86_64-darwin" {
      url    = "https://example.org/fedora.qcow2"
      sha256 = "sha256-hGV0yKl80tjcHyMQYtcxB8yFy7vaVjNeJkpG46bIqy8="
    }
  }
}
