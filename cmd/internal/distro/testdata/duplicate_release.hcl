distro "ubuntu" {
  strategy = "disk"
  boot_filesystem = "ext4"
  initrd_generator = "dracut"
  guest_family = "debian"
  ssh_unit = "ssh.service"
  share_transport = "9p"
  rootfs   = "ext4"
  kernel   = "boot/vmlinuz-*"
  initrd   = "boot/initrd.img-*"
  network  = "netplan"

  release "24.04" {
    codename = "noble"
    image "x86_64-linux" {
      url    = "https://example.org/noble-amd64.img"
      sha256 = "1zhg2ka3nlg09y3lci3cafybsnm9zk6ddv4jswqqprijbijv0cq5"
    }
    image "x86_64-linux" {
      url    = "https://example.org/noble-amd64-again.img"
      sha256 = "1zhg2ka3nlg09y3lci3cafybsnm9zk6ddv4jswqqprijbijv0cq5"
    }
  }

  release "24.04" {
    codename = "noble"
    image "aarch64-linux" {
      url    = "https://example.org/noble-arm64.img"
      sha256 = "0xh4nxfr9byri40k5smwlcdzs35ixhgq8sw3wkfscpp8arbs0vda"
    }
  }
}
