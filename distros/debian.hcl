# Debian. Schema and sources: distros/README.md.
#
# Images are the `generic` variant (the `genericcloud` kernel has no 9p, so
# the Nix store could not be mounted). Hashes as nix-vm-test pins them
# (Nix base-32 SHA-256, from nix-prefetch-url). Debian prunes old dated and
# daily builds: when a URL 404s, refresh it or build the image from packages
# (`distrotest-gen image build debian/13`), which is what the build blocks
# are for.

distro "debian" {
  strategy         = "disk"
  rootfs           = "ext4" # GPT: p1 root, p14 BIOS boot, p15 ESP (found, not numbered here)
  kernel           = "boot/vmlinuz-*"
  initrd           = "boot/initrd.img-*"
  boot_filesystem  = "ext4" # /boot is a directory of the root
  initrd_generator = "initramfs-tools"
  network          = "networkd"
  guest_family     = "debian"
  ssh_unit         = "ssh.service"
  share_transport  = "9p" # the generic kernel has 9p (genericcloud's has not)

  release "12" {
    codename = "bookworm"
    build { suite = "bookworm" }

    image "x86_64-linux" {
      url    = "https://cloud.debian.org/images/cloud/bookworm/20260806-2562/debian-12-generic-amd64-20260806-2562.qcow2"
      sha256 = "0mb2pbryiacw19vcll0az6wbqjnyrwnmjcmfkb61hlwnlcivsgfx"
    }
    image "aarch64-linux" {
      url    = "https://cloud.debian.org/images/cloud/bookworm/20260806-2562/debian-12-generic-arm64-20260806-2562.qcow2"
      sha256 = "1ghhs1g4waxmywdg98y9i20xw1z8lhw7aw0wavv31mbiwn0qyswc"
    }
  }

  release "13" {
    codename = "trixie"
    build { suite = "trixie" }

    # Daily builds: nix-vm-test scrapes trixie/daily.
    image "x86_64-linux" {
      url    = "https://cloud.debian.org/images/cloud/trixie/daily/20260809-2565/debian-13-generic-amd64-daily-20260809-2565.qcow2"
      sha256 = "0nwsvj53mzbiagnq54hq264kpcqg73mkj54j5r0mzcag9kckdz72"
    }
    image "aarch64-linux" {
      url    = "https://cloud.debian.org/images/cloud/trixie/daily/20260809-2565/debian-13-generic-arm64-daily-20260809-2565.qcow2"
      sha256 = "1lnsypjlqkf644gai5r2xx16mx2a0hky50kc7zc6368nzd296xf8"
    }
  }
}
