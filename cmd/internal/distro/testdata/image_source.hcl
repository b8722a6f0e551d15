distro "debian" {
  strategy = "disk"
  rootfs   = "ext4"
  kernel   = "boot/vmlinuz-*"
  initrd   = "boot/initrd.img-*"
  network  = "networkd"
  boot_filesystem = "ext4"
  initrd_generator = "initramfs-tools"
  guest_family = "debian"
  ssh_unit = "ssh.service"
  share_transport = "9p"

  release "11" {
    image "x86_64-linux" {
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
  }
  release "12" {
    image "x86_64-linux" {
      url    = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2"
      oci    = "quay.io/containerdisks/debian:12@sha256:0000000000000000000000000000000000000000000000000000000000000000"
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
  }
  release "13" {
    image "x86_64-linux" {
      oci    = "quay.io/containerdisks/debian:13"
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
    image "aarch64-linux" {
      oci    = "containerdisks/debian@sha256:0000000000000000000000000000000000000000000000000000000000000000"
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
  }
}
