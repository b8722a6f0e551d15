# prepare { image; distro ? null; instrument ? true; name; }: the prepared image directory
# (disk.qcow2, vmlinuz, initrd, manifest.json) of a qcow2 or raw disk image,
# written by `distrotest-gen image patch` in the sandbox. `distro`
# ("debian/13") names the release; null lets distrotest-gen read it from the
# image's /etc/os-release. With instrument = false nothing is written into
# the image: it boots as it is, without the backdoor (console-only tests;
# shell calls fail saying so). The disk is standalone, so the result depends
# only on the image and distrotest-gen.
{
  lib,
  runCommand,
  distrotest-gen,
  system,
}:
{
  image,
  distro ? null,
  instrument ? true,
  name,
  passthru ? { },
}:
runCommand name
  {
    # the patcher is pure Go (no qemu-img, no VM, no root)
    nativeBuildInputs = [ distrotest-gen ];
    inherit passthru;
  }
  ''
    distrotest-gen image patch ${
      if distro == null then "" else "--distro ${lib.escapeShellArg distro} "
    }${if instrument then "" else "--no-instrument "}--system ${system} --standalone ${image} -o "$out"
  ''
