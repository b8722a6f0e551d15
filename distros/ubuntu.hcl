# Ubuntu server cloud images (`*-server-cloudimg-<arch>.img`, qcow2 despite
# the suffix). Schema and sources: distros/README.md.
#
# Hashes as nix-vm-test pins them (Nix base-32 SHA-256). Maintained releases
# (22.04, 24.04, 26.04) get new dated builds every week upstream; 20.04 and
# 24.10 are frozen at their last release directory. 22.10, 23.04 and 23.10
# are described as nix-vm-test pins them (its ubuntu/images.json) so that
# lib says why they are not offered instead of Nix's "attribute missing":
# EOL, and their cloud images are gone from cloud-images.ubuntu.com.

#
# Layout (distro-shapes.md §1.1, livecd-rootfs): p1 ext4 root `cloudimg-rootfs`,
# p14 BIOS boot, p15 ESP; from 23.10 on the kernel and initrd live on a
# separate ext4 partition labelled BOOT of type XBOOTLDR (p16 on 24.04, p13
# later), which the patcher finds by type or label (kernel = "boot/…" is
# then looked up without "boot/"). The disk strategy writes the ext4 root.

distro "ubuntu" {
  strategy         = "disk"
  rootfs           = "ext4"
  kernel           = "boot/vmlinuz-*"
  initrd           = "boot/initrd.img-*"
  boot_filesystem  = "ext4"
  initrd_generator = "initramfs-tools" # up to 25.04
  network          = "netplan"
  guest_family     = "ubuntu" # masks snapd besides the Debian-family units
  ssh_unit         = "ssh.service"
  share_transport  = "9p" # 9p.ko is in linux-modules (not -extra)

  release "20.04" {
    codename = "focal"
    image "x86_64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/focal/release-20250624/ubuntu-20.04-server-cloudimg-amd64.img"
      sha256 = "1sg5nya4hdmp4dqcajg9768phky346yk6ig1mrs1psnzfxyrgwhq"
    }
    image "aarch64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/focal/release-20250624/ubuntu-20.04-server-cloudimg-arm64.img"
      sha256 = "0rg4mm8sm0miiqn0z1sqcfym9dg6valc7xv3ij1qymz2hgbkqq6l"
    }
  }

  release "22.04" {
    codename = "jammy"
    image "x86_64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/22.04/release-20260807/ubuntu-22.04-server-cloudimg-amd64.img"
      sha256 = "1n9a1jblfyy3hylp3d9mjn4xlagcqgly5nv18mvcwy9jla8149zz"
    }
    image "aarch64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/22.04/release-20260807/ubuntu-22.04-server-cloudimg-arm64.img"
      sha256 = "1kaw7wq3w0bcrsq9l8jhc3bm2yivmg6hlqwmih7v76i4nv4rlzdi"
    }
  }

  release "22.10" {
    codename    = "kinetic"
    not_offered = "end of life since 2023-07-20: its cloud images were removed from cloud-images.ubuntu.com, so the image nix-vm-test pins (release-20230716) no longer downloads; use 22.04, 24.04 or 26.04"
    image "x86_64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/22.10/release-20230716/ubuntu-22.10-server-cloudimg-amd64.img"
      sha256 = "0yjn4j023psby3a17z8sh1030lyihnjysyagqn916vklpcrjgj34"
    }
    image "aarch64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/22.10/release-20230716/ubuntu-22.10-server-cloudimg-arm64.img"
      sha256 = "1ivc5i4pi7vvcz8df0srsy61323vw094flq2qkjn6hicdp00rpp6"
    }
  }

  release "23.04" {
    codename    = "lunar"
    not_offered = "end of life since 2024-01-25: its cloud images were removed from cloud-images.ubuntu.com, so the image nix-vm-test pins (release-20240115) no longer downloads; use 22.04, 24.04 or 26.04"
    image "x86_64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/23.04/release-20240115/ubuntu-23.04-server-cloudimg-amd64.img"
      sha256 = "0g099zg4sg388khsb8isrf9f7wbvwm96dhykwfmm6kg438vqgac7"
    }
    image "aarch64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/23.04/release-20240115/ubuntu-23.04-server-cloudimg-arm64.img"
      sha256 = "0g1xp9fv7wbk443np53xsrf4ixdx93kcxwhkwgjglz7csih3227z"
    }
  }

  release "23.10" {
    codename    = "mantic"
    not_offered = "end of life since 2024-07-11: its cloud images were removed from cloud-images.ubuntu.com, so the image nix-vm-test pins (release-20240710) no longer downloads; use 22.04, 24.04 or 26.04"
    image "x86_64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/23.10/release-20240710/ubuntu-23.10-server-cloudimg-amd64.img"
      sha256 = "0dlx5zmky92yrdpqd1dijg3fb5587fgfx55hbaqnc4bvwp4vp5v5"
    }
    image "aarch64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/23.10/release-20240710/ubuntu-23.10-server-cloudimg-arm64.img"
      sha256 = "16l9k6d0dgi1lib8rrxa610sy36kdmw962q8840wwiw8937w54rx"
    }
  }

  release "24.04" {
    codename = "noble"
    image "x86_64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/noble/release-20260801/ubuntu-24.04-server-cloudimg-amd64.img"
      sha256 = "1zhg2ka3nlg09y3lci3cafybsnm9zk6ddv4jswqqprijbijv0cq5"
    }
    image "aarch64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/noble/release-20260801/ubuntu-24.04-server-cloudimg-arm64.img"
      sha256 = "0xh4nxfr9byri40k5smwlcdzs35ixhgq8sw3wkfscpp8arbs0vda"
    }
  }

  release "24.10" {
    codename        = "oracular"
    share_transport = "virtiofs" # kernel 6.11: the 9p regression of 6.9–6.11 (lima disables 9p)
    image "x86_64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/oracular/release-20250701/ubuntu-24.10-server-cloudimg-amd64.img"
      sha256 = "00yars1n82rcxvba8n8krlg32phf36avqprldrj5ypl910r1vwv9"
    }
    image "aarch64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/oracular/release-20250701/ubuntu-24.10-server-cloudimg-arm64.img"
      sha256 = "0zsjvg6zkl95i81v8iw16fqgx6w7zq0fqaph68nri3ricr6i679x"
    }
  }

  release "26.04" {
    codename         = "resolute"
    initrd_generator = "dracut" # Ubuntu's default from 25.10 (whether the cloud image uses it is unverified)
    image "x86_64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/resolute/release-20260731/ubuntu-26.04-server-cloudimg-amd64.img"
      sha256 = "01dy46g1i8dby2idj6j73jxxzin2h96q7an9l25s0ih17hvcbiwx"
    }
    image "aarch64-linux" {
      url    = "https://cloud-images.ubuntu.com/releases/resolute/release-20260731/ubuntu-26.04-server-cloudimg-arm64.img"
      sha256 = "1fl82ybpc97za594wadldpf8fgvrmsr3n5vmjdr177pk87fky49y"
    }
  }
}
