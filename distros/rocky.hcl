# Rocky Linux GenericCloud images. Schema and sources: distros/README.md.
#
# 8.6–9.6 and 10.1 as nix-vm-test pins them (vault URLs, Nix base-32
# SHA-256); 9.8 and 10.2 from lima's templates (hex SHA-256). 8.6 uses the
# floating name Rocky-8-GenericCloud.latest inside the 8.6 vault directory.
#
# Layout (distro-shapes.md §1.3, rocky-linux/kickstarts): ESP, xfs /boot
# labelled boot with BLS entries, xfs root made with -m bigtime=0,inobtcount=0
# (vda5 from 9.x's %pre kickstarts; the patcher finds it, no number here).

distro "rocky" {
  strategy              = "initrd" # the disk (xfs) is not written
  rootfs                = "xfs"
  kernel                = "boot/vmlinuz-*"
  initrd                = "boot/initramfs-*.img"
  boot_filesystem       = "xfs"
  initrd_generator      = "dracut" # dracut-config-generic: a non-hostonly initrd with virtio
  network               = "networkmanager"
  guest_family          = "el"
  ssh_unit              = "sshd.service"
  selinux               = true
  virtio_console_module = true       # CONFIG_VIRTIO_CONSOLE=m: hvc0 appears late
  share_transport       = "virtiofs" # RHEL kernels build no 9p

  release "8.6" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/8.6/images/x86_64/Rocky-8-GenericCloud.latest.x86_64.qcow2"
      sha256 = "1l19bj4s99x0n02s3ym5p70zcdv733zpfqrqhpfj4vmrxqwnly3v"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/8.6/images/aarch64/Rocky-8-GenericCloud.latest.aarch64.qcow2"
      sha256 = "1d2hp7s00hczxz0f0769rjy74fxbyflc8qpq8dzd6xq6q703rnj2"
    }
  }

  release "8.7" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/8.7/images/x86_64/Rocky-8-GenericCloud-Base-8.7-20230215.0.x86_64.qcow2"
      sha256 = "0npbh24fdx0fxnmvvng34qc0m7p8nsgddijz96iqwjqjfrmy0hpj"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/8.7/images/aarch64/Rocky-8-GenericCloud-Base-8.7-20230215.0.aarch64.qcow2"
      sha256 = "1awgapbai68q8ndy9c1sjmf2hzj0fg78y2xrm55ync8nbv5rhrph"
    }
  }

  release "8.8" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/8.8/images/x86_64/Rocky-8-GenericCloud-Base-8.8-20230518.0.x86_64.qcow2"
      sha256 = "0xyzbqfqajzj7i1213x3h7v0s9sjhyzcah9pag7wyx69hj7zcsq8"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/8.8/images/aarch64/Rocky-8-GenericCloud-Base-8.8-20230518.0.aarch64.qcow2"
      sha256 = "0in78y9ing7j7ys7vzkv99fcya3fq2w3g0kc9h4ngargk0ivivfw"
    }
  }

  release "8.9" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/8.9/images/x86_64/Rocky-8-GenericCloud-Base-8.9-20231119.0.x86_64.qcow2"
      sha256 = "1r9smjpf2z3bppqfkaggbxyjw1n51ywi9h86adwn9l4xcjkiazyi"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/8.9/images/aarch64/Rocky-8-GenericCloud-Base-8.9-20231119.0.aarch64.qcow2"
      sha256 = "0i6zjrqp17vyy3k031bzsf743w9r5ws2qcck45q01lmq4zy1l740"
    }
  }

  release "9.0" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.0/images/x86_64/Rocky-9-GenericCloud-9.0-20220830.0.x86_64.qcow2"
      sha256 = "02z2ji3d556g9n1dbb1l6802msfv75viba5sarzxylrnmph709gh"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.0/images/aarch64/Rocky-9-GenericCloud-9.0-20220830.0.aarch64.qcow2"
      sha256 = "07p4k3s3ikadfa54d17kyc7hmbbfpsnvpyhll5fw33zpay6jw9ja"
    }
  }

  release "9.1" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.1/images/x86_64/Rocky-9-GenericCloud-Base-9.1-20230215.0.x86_64.qcow2"
      sha256 = "0rdcbvk87x5prx0gcs718z3mlrw3hd5s7h1zw59814byrlw071ak"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.1/images/aarch64/Rocky-9-GenericCloud-Base-9.1-20230215.0.aarch64.qcow2"
      sha256 = "0a9ql48nn4hj7w56vbzifxqddqffhqskb6x6qminsdq86cpmk4b9"
    }
  }

  release "9.2" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.2/images/x86_64/Rocky-9-GenericCloud-Base-9.2-20230513.0.x86_64.qcow2"
      sha256 = "0c0lvvv0ixfir3ah5iagcfzv0lrix2dmm802h5a0mcp1mfc0ylah"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.2/images/aarch64/Rocky-9-GenericCloud-Base-9.2-20230513.0.aarch64.qcow2"
      sha256 = "1n05gk8sh61bdadyrg6lswx1vqr1r7cb0hqf8ynhg41mpv054xzb"
    }
  }

  release "9.3" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.3/images/x86_64/Rocky-9-GenericCloud-Base-9.3-20231113.0.x86_64.qcow2"
      sha256 = "0lg6nbwxx19a9bpfg5sddgw4swn3qlzclhd8n10h76zj6y62f4vp"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.3/images/aarch64/Rocky-9-GenericCloud-Base-9.3-20231113.0.aarch64.qcow2"
      sha256 = "1hac6nkrbw60pbd00pag8hbrwrcickwrqcrm0ciz7nw60zhaaj0r"
    }
  }

  release "9.4" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.4/images/x86_64/Rocky-9-GenericCloud-Base-9.4-20240609.0.x86_64.qcow2"
      sha256 = "1msxpb4i3nrpp64p9zqyqxdfa8yscidyyrk1pbqg7bxgppxy8jks"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.4/images/aarch64/Rocky-9-GenericCloud-Base-9.4-20240609.0.aarch64.qcow2"
      sha256 = "123gxswmh1a48k651fj18520pnxhrj42hffs37palbr1cr8dk7dd"
    }
  }

  release "9.5" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.5/images/x86_64/Rocky-9-GenericCloud-Base-9.5-20241118.0.x86_64.qcow2"
      sha256 = "0mxzxqdf5jf1l22pj2mlj9x25wng3wbyjh352wi0lc07r3yr7506"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.5/images/aarch64/Rocky-9-GenericCloud-Base-9.5-20241118.0.aarch64.qcow2"
      sha256 = "1waj6byn8hc27y9icckhdjbbd3db6mhjd39yppbw7bbza30bqhsl"
    }
  }

  release "9.6" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.6/images/x86_64/Rocky-9-GenericCloud-Base-9.6-20250531.0.x86_64.qcow2"
      sha256 = "0g8ad60a62hk0bxw6icavci3f0sjkc77h127vszcrb9wp1dq2wic"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/9.6/images/aarch64/Rocky-9-GenericCloud-Base-9.6-20250531.0.aarch64.qcow2"
      sha256 = "0jhfnggfp5ywbqmxz1cb9lhvxlm8zffw8h5l5a7c44f0gk0v4xip"
    }
  }

  release "9.8" {
    image "x86_64-linux" {
      url    = "https://dl.rockylinux.org/pub/rocky/9.8/images/x86_64/Rocky-9-GenericCloud-Base-9.8-20260525.0.x86_64.qcow2"
      sha256 = "92c206cc6f790c61583247eefe87890f8828420662c17cacf247cec78ab4eec8"
    }
    image "aarch64-linux" {
      url    = "https://dl.rockylinux.org/pub/rocky/9.8/images/aarch64/Rocky-9-GenericCloud-Base-9.8-20260525.0.aarch64.qcow2"
      sha256 = "24692a444f1f0b8bb95375c38c8b43f8099a115347623691be2c330b40c8a1fe"
    }
  }

  release "10.1" {
    image "x86_64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/10.1/images/x86_64/Rocky-10-GenericCloud-Base-10.1-20251116.0.x86_64.qcow2"
      sha256 = "1ba7qdmnvmkc5jp998kdka8ib1w9yb1wmjzcw7wwcd5112zqlqi8"
    }
    image "aarch64-linux" {
      url    = "https://download.rockylinux.org/vault/rocky/10.1/images/aarch64/Rocky-10-GenericCloud-Base-10.1-20251116.0.aarch64.qcow2"
      sha256 = "0vg3ir1ishq9581rpmzl2c6vlm62kfkkb9wg2cr5ahgvz0y05h5b"
    }
  }

  release "10.2" {
    image "x86_64-linux" {
      url    = "https://dl.rockylinux.org/pub/rocky/10.2/images/x86_64/Rocky-10-GenericCloud-Base-10.2-20260525.0.x86_64.qcow2"
      sha256 = "9fc9e9ff16888bb68ac39b0392e25c9c92684d50c85f1cce6ab549363bbc4b48"
    }
    image "aarch64-linux" {
      url    = "https://dl.rockylinux.org/pub/rocky/10.2/images/aarch64/Rocky-10-GenericCloud-Base-10.2-20260525.0.aarch64.qcow2"
      sha256 = "457c8375e19496f43a25c4a6169fa11237536c53cef6f85a20ea3c5a751aa0f5"
    }
  }
}
