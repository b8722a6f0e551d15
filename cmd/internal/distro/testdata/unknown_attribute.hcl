distro "debian" {
  strategyy = "disk"
  boot_filesystem = "ext4"
  initrd_generator = "dracut"
  guest_family = "debian"
  ssh_unit = "ssh.service"
  share_transport = "9p"
  rootfs    = "ext4"

  release "13" {
    colour = "red"
    image "x86_64-linux" {
      url    = "https://example.org/debian-13.qcow2"
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
      size   = 3
    }
    imag "aarch64-linux" {
    }
  }
}
