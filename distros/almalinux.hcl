# AlmaLinux GenericCloud images. Schema and sources: distros/README.md.
#
# 9.8 and 10.2 from lima's templates (hex SHA-256). AlmaLinux 8 is left out:
# no pinned image in our sources.
#
# Layout (distro-shapes.md §1.3, AlmaLinux/cloud-images kickstarts): p1 BIOS
# boot, p2 ESP, p3 xfs /boot, p4 xfs root; BLS entries; dracut-config-generic.

distro "almalinux" {
  strategy              = "initrd"
  rootfs                = "xfs"
  kernel                = "boot/vmlinuz-*"
  initrd                = "boot/initramfs-*.img"
  boot_filesystem       = "xfs"
  initrd_generator      = "dracut"
  network               = "networkmanager"
  guest_family          = "el"
  ssh_unit              = "sshd.service"
  selinux               = true
  virtio_console_module = true
  share_transport       = "virtiofs" # RHEL kernels build no 9p

  release "9.8" {
    image "x86_64-linux" {
      url    = "https://repo.almalinux.org/almalinux/9.8/cloud/x86_64/images/AlmaLinux-9-GenericCloud-9.8-20260526.x86_64.qcow2"
      sha256 = "c397eed7023e92c841155831b1f47e26300e5bef0f0256c129322307c897a251"
    }
    image "aarch64-linux" {
      url    = "https://repo.almalinux.org/almalinux/9.8/cloud/aarch64/images/AlmaLinux-9-GenericCloud-9.8-20260526.aarch64.qcow2"
      sha256 = "b5d883c5f84c68a9828fbd3aac863f9a723b43f8965a32ff7a1c198301f42a29"
    }
  }

  release "10.2" {
    image "x86_64-linux" {
      url    = "https://repo.almalinux.org/almalinux/10.2/cloud/x86_64/images/AlmaLinux-10-GenericCloud-10.2-20260526.0.x86_64.qcow2"
      sha256 = "47f2218668dd4776be140dd92fa3bea700be1766e2c7d88bdfd6a4b50f477b4d"
    }
    image "aarch64-linux" {
      url    = "https://repo.almalinux.org/almalinux/10.2/cloud/aarch64/images/AlmaLinux-10-GenericCloud-10.2-20260526.0.aarch64.qcow2"
      sha256 = "336c6861fe0ba9115af00f557ed1b09385a3525612dd0cb9cce7e0486f8e74a4"
    }
  }
}
