# prepare { image; distro ? null; spec ? null; instrument ? true; name; }: the
# prepared image directory (disk.qcow2, vmlinuz, initrd, manifest.json) of a
# qcow2 or raw disk image, written by `distrotest-gen image patch` in the
# sandbox. `spec` (a release's patchSpec from gen/, JSON) gives every fact
# the patcher needs: then the patcher is distrotest-patcher, built without
# the embedded descriptions, so the result depends only on the image, the
# patcher and that release's own facts (editing another distro's .hcl
# rebuilds nothing here). Otherwise `distro` ("debian/13") names the release
# in the embedded descriptions, and null lets distrotest-gen read it from
# the image's /etc/os-release. With instrument = false nothing is written
# into the image: it boots as it is, without the backdoor (console-only
# tests; shell calls fail saying so). The disk is standalone.
{
  lib,
  runCommand,
  distrotest-gen,
  distrotest-patcher,
  system,
}:
{
  image,
  distro ? null,
  spec ? null,
  instrument ? true,
  name,
  passthru ? { },
}:
let
  specFile = builtins.toFile "${name}-spec.json" spec;
  withSpec = spec != null && instrument;
in
runCommand name
  {
    # the patcher is pure Go (no qemu-img, no VM, no root)
    nativeBuildInputs = [ (if withSpec then distrotest-patcher else distrotest-gen) ];
    passthru = passthru // lib.optionalAttrs withSpec { spec = specFile; };
  }
  ''
    distrotest-gen image patch ${
      if withSpec then
        "--spec ${specFile} "
      else if distro == null then
        ""
      else
        "--distro ${lib.escapeShellArg distro} "
    }${if instrument then "" else "--no-instrument "}--system ${system} --standalone ${image} -o "$out"
  ''
