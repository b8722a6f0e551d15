# gen/ data for the evaluation tests (tests/nix/eval.nix): the shape of
# gen/default.nix with cases the real data may not have at any given time —
# an unsupported release, a release with an image for one system only, a
# second distro. Hashes and URLs are placeholders; nothing is fetched.
let
  image = name: {
    url = "https://images.example/${name}";
    hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    inherit name;
  };
  release = attrs: {
    codename = "";
    strategy = "disk";
    rootfs = "ext4";
    supported = true;
    rootPartition = 1;
    kernel = "boot/vmlinuz-*";
    initrd = "boot/initrd.img-*";
    network = "networkd";
    initrdGenerator = "initramfs-tools";
    selinux = false;
    shareTransport = "9p";
    notOffered = null;
    patchSpec = builtins.toJSON {
      distro = "fixture";
      release = "1";
    };
    build = null;
  }
  // attrs;
in
{
  debian = {
    family = "debian";
    releases = {
      "11" = release {
        codename = "bullseye";
        supported = false;
        images.x86_64-linux = image "distrotest-image-debian-11-x86_64-linux.qcow2";
      };
      "12" = release {
        codename = "bookworm";
        images.aarch64-linux = image "distrotest-image-debian-12-aarch64-linux.qcow2";
      };
      "13" = release {
        codename = "trixie";
        images.x86_64-linux = image "distrotest-image-debian-13-x86_64-linux.qcow2";
        images.aarch64-linux = image "distrotest-image-debian-13-aarch64-linux.qcow2";
      };
    };
  };
  ubuntu = {
    family = "debian";
    releases."24.04" = release {
      codename = "noble";
      images.x86_64-linux = image "distrotest-image-ubuntu-24.04-x86_64-linux.qcow2";
    };
  };
}
