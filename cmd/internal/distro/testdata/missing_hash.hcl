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
      url = "https://example.org/debian-13-amd64.qcow2"
    }
    image "aarch64-linux" {
      url    = "ftp://example.org/debian-13-arm64.qcow2"
      sha256 = "1lnsypjlqkf644gai5r2xx16mx2a0hky50kc7zc6368nzd296xf8"
    }
  }
}
