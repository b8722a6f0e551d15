distro "debian" {
  strategy = "disk"
  boot_filesystem = "ext4"
  initrd_generator = "dracut"
  guest_family = "debian"
  ssh_unit = "ssh.service"
  share_transport = "9p"
  rootfs   = "ext4"
  kernel   = "boot/vmlinuz-*"
  initrd   = "boot/initrd.img-*"
  network  = "networkd"

  release "13" {
    image "x86_64-linux" {
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
    build {}
  }
}
