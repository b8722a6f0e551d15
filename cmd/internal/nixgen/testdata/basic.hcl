distro "debian" {
  strategy       = "disk"
  rootfs         = "ext4"
  root_partition = 1
  kernel         = "boot/vmlinuz-*"
  initrd         = "boot/initrd.img-*"
  network        = "networkd"
  boot_filesystem  = "ext4"
  initrd_generator = "initramfs-tools"
  guest_family     = "debian"
  ssh_unit         = "ssh.service"
  share_transport  = "9p"

  release "13" {
    codename = "trixie"
    build { suite = "trixie" }
    image "x86_64-linux" {
      url    = "https://cloud.debian.org/images/cloud/trixie/daily/20260809-2565/debian-13-generic-amd64-daily-20260809-2565.qcow2"
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
    image "aarch64-linux" {
      url    = "https://cloud.debian.org/images/cloud/trixie/20260712-2537/debian-13-genericcloud-arm64-20260712-2537.qcow2"
      sha512 = "8543d795f2fde630eb66c492f245a8c1da19dedc636e0a8e7b3d0f95920e1a05aa911ef2d82d177d41cc53ced5fccbd2a3945d07fa5e15018914c4d864bb07ed"
    }
  }

  release "12" {
    codename = "bookworm"
    image "x86_64-linux" {
      url    = "https://cloud.debian.org/images/cloud/bookworm/20260806-2562/debian-12-generic-amd64-20260806-2562.qcow2"
      sha256 = "dd3dbd23a3965318cc9aae32592dcfde4abcb8f90a50ca760a9ca9e8f3ba6255"
    }
  }
}
