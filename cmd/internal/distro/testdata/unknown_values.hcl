distro "Fedora" {
  strategy       = "ssh"
  rootfs         = "zfs"
  root_partition = 0
  kernel         = "/boot/vmlinuz-*"
  initrd         = "boot/initramfs-[.img"
  network        = "ifupdown"
  boot_filesystem  = "btrfs"
  initrd_generator = "mkinitcpio"
  guest_family     = "arch"
  ssh_unit         = "sshd"
  share_transport  = "nfs"
  root_device      = "path"
  root_subvolume   = "/@root"
  not_offered      = " "

  release "rawhide-1" {
    codename = "Rawhide"
    image "x86_64-darwin" {
      url    = "https://example.org/fedora.qcow2"
      sha256 = "sha256-hGV0yKl80tjcHyMQYtcxB8yFy7vaVjNeJkpG46bIqy8="
    }
  }
}
