distro "debian" {
  strategy = "disk"
  rootfs   = "ext4"
  kernel   = "boot/vmlinuz-${var.version}"
  initrd   = upper("boot/initrd.img-*")
  network  = "networkd"
  selinux  = "maybe"

  release "13" {
    build { suite = "trixie" }
  }
}
