# A release whose image is a KubeVirt containerDisk pinned by digest; sha256
# is the hash of its disk/disk.img (the Nix fixed-output hash).
distro "ubuntu" {
  strategy = "disk"
  rootfs   = "ext4"
  kernel   = "boot/vmlinuz-*"
  initrd   = "boot/initrd.img-*"
  network  = "networkd"
  boot_filesystem  = "ext4"
  initrd_generator = "initramfs-tools"
  guest_family     = "ubuntu"
  ssh_unit         = "ssh.service"
  share_transport  = "9p"

  release "22.04" {
    image "x86_64-linux" {
      oci    = "quay.io/containerdisks/ubuntu:22.04@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
  }
}
