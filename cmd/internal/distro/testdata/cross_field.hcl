distro "rocky" {
  strategy         = "disk"
  rootfs           = "xfs"
  kernel           = "boot/vmlinuz-*"
  initrd           = "boot/initramfs-*.img"
  boot_filesystem  = "xfs"
  initrd_generator = "dracut"
  network          = "networkmanager"
  guest_family     = "el"
  ssh_unit         = "sshd.service"
  share_transport  = "virtiofs"

  release "9.6" {
    root_subvolume = "root"
    image "x86_64-linux" {
      url    = "https://example.org/rocky.qcow2"
      sha256 = "sha256-hGV0yKl80tjcHyMQYtcxB8yFy7vaVjNeJkpG46bIqy8="
    }
  }
}
