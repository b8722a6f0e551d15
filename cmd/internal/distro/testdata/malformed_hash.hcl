distro "rocky" {
  strategy = "initrd"
  boot_filesystem = "ext4"
  initrd_generator = "dracut"
  guest_family = "debian"
  ssh_unit = "ssh.service"
  share_transport = "9p"
  rootfs   = "xfs"
  kernel   = "boot/vmlinuz-*"
  initrd   = "boot/initramfs-*.img"
  network  = "networkmanager"

  release "9.6" {
    image "x86_64-linux" {
      url    = "https://example.org/short.qcow2"
      sha256 = "0g8ad60a62hk0bxw6icavci3f0sjkc77h127vszcrb9wp1dq2wi"
    }
    image "aarch64-linux" {
      url    = "https://example.org/alphabet.qcow2"
      sha256 = "0jhfnggfp5ywbqmxz1cb9lhvxlm8zffw8h5l5a7c44f0gk0v4xie"
    }
  }
  release "10.1" {
    image "x86_64-linux" {
      url    = "https://example.org/hex.qcow2"
      sha512 = "7ae53e9dbee282bfc16f289dec483dde3a8598769c38a267948310f7a2a52c662620198603bc52c142627efba379863d16079698a10b34102d55bcedd40e8dzz"
    }
    image "aarch64-linux" {
      url    = "https://example.org/sri.qcow2"
      sha256 = "sha512-euU+nb7igr/Bbyid7Eg93jqFmHacOKJnlIMQ96KlLGYmIBmGA7xSwUJifvujeYY9FgeWmKELNBAtVbzt1A6NMg=="
    }
  }
  release "10.2" {
    image "x86_64-linux" {
      url    = "https://example.org/both.qcow2"
      sha256 = "9fc9e9ff16888bb68ac39b0392e25c9c92684d50c85f1cce6ab549363bbc4b48"
      sha512 = "7ae53e9dbee282bfc16f289dec483dde3a8598769c38a267948310f7a2a52c662620198603bc52c142627efba379863d16079698a10b34102d55bcedd40e8d32"
    }
  }
}
