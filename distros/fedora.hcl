# Fedora Cloud Base (Generic) images. Schema and sources: distros/README.md.
#
# x86_64 hashes as nix-vm-test pins them (SRI); aarch64 images (42 and 43
# only) from lima's templates (hex; nix-vm-test briefly pinned the same 42
# image).
#
# Layout (distro-shapes.md §1.2, kiwi's Cloud-Base-Generic profile): BIOS
# boot, ESP, an ext4 /boot with BLS entries, and a btrfs root labelled
# fedora whose / is the subvolume `root` (not the default subvolume, so
# rootflags=subvol=root is needed). Fedora 44+ moves /boot into btrfs, which
# distrotest cannot read: not described. Fedora 39 was built with
# ImageFactory; its /boot layout is unverified.

distro "fedora" {
  # The initrd overlay: no disk write, any root filesystem, any systemd.
  strategy              = "initrd"
  rootfs                = "btrfs"
  root_subvolume        = "root"
  kernel                = "boot/vmlinuz-*"
  initrd                = "boot/initramfs-*.img"
  boot_filesystem       = "ext4"
  initrd_generator      = "dracut"
  network               = "networkmanager"
  guest_family          = "fedora"
  ssh_unit              = "sshd.service"
  selinux               = true  # enforcing in the image; booted permissive unless asked
  virtio_console_module = false # CONFIG_VIRTIO_CONSOLE=y
  share_transport       = "9p"

  release "39" {
    image "x86_64-linux" {
      url    = "https://download.fedoraproject.org/pub/fedora/linux/releases/39/Cloud/x86_64/images/Fedora-Cloud-Base-39-1.5.x86_64.qcow2"
      sha256 = "sha256-q1vlBYxcg5Uop9Y3OTTgzlrWyPgL1x7TOQAyAn2lLzc="
    }
  }

  release "40" {
    image "x86_64-linux" {
      url    = "https://download.fedoraproject.org/pub/fedora/linux/releases/40/Cloud/x86_64/images/Fedora-Cloud-Base-Generic.x86_64-40-1.14.qcow2"
      sha256 = "sha256-rFjzw1tzJy1ZhvptO8RP0ka0XfTDNOmaB7O70AaEre4="
    }
  }

  release "41" {
    share_transport = "virtiofs" # kernel 6.11 at release: the 9p regression (lima disables 9p)
    image "x86_64-linux" {
      url    = "https://download.fedoraproject.org/pub/fedora/linux/releases/41/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2"
      sha256 = "sha256-YgWuDFJLTRgW29NXPOKbXETtJsn7yHT75IxByJ3QusI="
    }
  }

  release "42" {
    image "x86_64-linux" {
      url    = "https://download.fedoraproject.org/pub/fedora/linux/releases/42/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-42-1.1.x86_64.qcow2"
      sha256 = "sha256-5AGk2y5eBNGWe2cpd0+qltpim887qQtn2NnM6ZBr7A8="
    }
    image "aarch64-linux" {
      url    = "https://download.fedoraproject.org/pub/fedora/linux/releases/42/Cloud/aarch64/images/Fedora-Cloud-Base-Generic-42-1.1.aarch64.qcow2"
      sha256 = "e10658419a8d50231037dc781c3155aa94180a8c7a74e5cac2a6b09eaa9342b7"
    }
  }

  release "43" {
    image "x86_64-linux" {
      url    = "https://download.fedoraproject.org/pub/fedora/linux/releases/43/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-43-1.6.x86_64.qcow2"
      sha256 = "sha256-hGV0yKl80tjcHyMQYtcxB8yFy7vaVjNeJkpG46bIqy8="
    }
    image "aarch64-linux" {
      url    = "https://download.fedoraproject.org/pub/fedora/linux/releases/43/Cloud/aarch64/images/Fedora-Cloud-Base-Generic-43-1.6.aarch64.qcow2"
      sha256 = "66031aea9ec61e6d0d5bba12b9454e80ca94e8a79c913d37ded4c60311705b8b"
    }
  }
}
