distro "debian" {
  strategy = "disk"
  rootfs   = "ext4"
  kernel   = "boot/vmlinuz-${var.version}"
  initrd   = upper("boot/initrd.img-*")
  network  = "networkd"
  quirks   = "snapd"

  release "13" {
    build { suite = "trixie" }
  }
}
