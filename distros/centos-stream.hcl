# CentOS Stream GenericCloud images. Schema and sources: distros/README.md.
#
# The 2026-07-20 builds from lima's templates (hex SHA-256).
#
# Layout (distro-shapes.md §1.3, CentOS-Stream-{9,10}-kvm-x86_64.ks): vda1 BIOS
# boot, vda2 ESP, vda3 xfs /boot labelled boot, vda4 xfs root labelled root
# (-m bigtime=0,inobtcount=0); BLS entries; dracut-config-generic.

distro "centos-stream" {
  strategy              = "initrd"
  rootfs                = "xfs"
  root_device           = "label" # root=LABEL=root, as the kickstart labels it
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

  release "9" {
    image "x86_64-linux" {
      url    = "https://cloud.centos.org/centos/9-stream/x86_64/images/CentOS-Stream-GenericCloud-9-20260720.0.x86_64.qcow2"
      sha256 = "c2bde1f49fcb2efa55c40c4ec5011a8f2fb227c63254774b2a4d186b41f3a9a5"
    }
    image "aarch64-linux" {
      url    = "https://cloud.centos.org/centos/9-stream/aarch64/images/CentOS-Stream-GenericCloud-9-20260720.0.aarch64.qcow2"
      sha256 = "6dcb4a1518d84e414fb53fe28ae841bb16bba2499a7ad523caabf44b3ccbb3c2"
    }
  }

  release "10" {
    image "x86_64-linux" {
      url    = "https://cloud.centos.org/centos/10-stream/x86_64/images/CentOS-Stream-GenericCloud-10-20260720.0.x86_64.qcow2"
      sha256 = "93796945df5e54952be21ca85067f0c9f3b11a2dd6ee2163154fd9748c4c41d7"
    }
    image "aarch64-linux" {
      url    = "https://cloud.centos.org/centos/10-stream/aarch64/images/CentOS-Stream-GenericCloud-10-20260720.0.aarch64.qcow2"
      sha256 = "e7922ec8c52fb1ba6faa0ba0d92ef0e89a4b0922294781c9564b8c721eb445a8"
    }
  }
}
