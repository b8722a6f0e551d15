# Stand-in shapes: images built here from Debian (trixie) packages by
# `distrotest-gen image build shape/<name>` that reproduce a family's disk
# layout, boot files and initrd generator, so the initrd strategy and the
# boot-file discovery are proven offline. They are test shapes, not those
# distros: the guest userland is Debian's. Schema: distros/README.md.

distro "shape" {
  strategy        = "initrd"
  kernel          = "boot/vmlinuz-*"
  share_transport = "9p"
  network         = "networkd"

  # EL: xfs /boot labelled boot with BLS entries, xfs root (EL's mkfs
  # options), a generic dracut initrd, no 9p modules in the kernel.
  release "el" {
    build { suite = "trixie" }
    rootfs                = "xfs"
    initrd                = "boot/initramfs-*.img"
    boot_filesystem       = "xfs"
    initrd_generator      = "dracut"
    guest_family          = "el"
    virtio_console_module = true
    share_transport       = "virtiofs"
    # the stand-in installs NetworkManager, as the family; no SELinux
    # policy is installed, selinux = true only puts enforcing=0 on the
    # command line as for the real family
    network  = "networkmanager"
    selinux  = true
    ssh_unit = "sshd.service" # the family's name (absent in the stand-in: masking it is harmless)
  }

  # Fedora 40–43: ext4 /boot with BLS entries, btrfs root in subvolume root.
  release "fedora" {
    build { suite = "trixie" }
    rootfs           = "btrfs"
    root_subvolume   = "root"
    initrd           = "boot/initramfs-*.img"
    boot_filesystem  = "ext4"
    initrd_generator = "dracut"
    guest_family     = "fedora"
    # the stand-in installs NetworkManager, as the family; no SELinux
    # policy is installed, selinux = true only puts enforcing=0 on the
    # command line as for the real family
    network  = "networkmanager"
    selinux  = true
    ssh_unit = "sshd.service" # the family's name (absent in the stand-in: masking it is harmless)
  }

  # Ubuntu ≥ 23.10: ext4 root and the ext4 BOOT partition (XBOOTLDR),
  # initramfs-tools; prepared with the initrd strategy (the real Ubuntu
  # releases use disk) to prove the initramfs-tools overlay.
  release "ubuntu" {
    build { suite = "trixie" }
    rootfs           = "ext4"
    initrd           = "boot/initrd.img-*"
    boot_filesystem  = "ext4"
    initrd_generator = "initramfs-tools"
    guest_family     = "ubuntu"
    ssh_unit         = "ssh.service"
  }
}
