# Strings that need escaping in Nix: "$${" is HCL for a literal "${".
distro "escaping" {
  strategy = "disk"
  rootfs   = "ext4"
  kernel   = "boot/vmlinuz-$${version}-\"quoted\"-\\*"
  initrd   = "boot/initrd-ünïcode-'' -*"
  network  = "networkd"
  boot_filesystem  = "ext4"
  initrd_generator = "initramfs-tools"
  guest_family     = "debian"
  ssh_unit         = "ssh.service"
  share_transport  = "9p"

  release "1.0" {
    image "x86_64-linux" {
      url    = "https://example.org/images/$${name}/a\\b?q=\"x\"&r=''"
      sha256 = "e2fc36d94c4fb15f412e921439eb380fb33b8911189282ed5371fd3a8adc9a5b"
    }
  }
}
