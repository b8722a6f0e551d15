distro "alpine" {
  kernel = "boot/vmlinuz-*"

  release "3.22" {
    rootfs = "ext4"
  }
}
