# Images: the generated data in gen/ (one file per distro, see
# distros/*.hcl) turned into a fetched base image and a prepared image per
# supported release that has an image for `system`.
#
# A prepared image is a directory (disk.qcow2, vmlinuz, initrd, manifest.json)
# written by `distrotest-gen image patch`; it depends only on the base image
# and distrotest-gen, so every test of that release shares it.
{
  lib,
  fetchurl,
  # lib/fetch-containerdisk.nix, for images given as `oci` (a containerDisk)
  fetchContainerDisk,
  runCommand,
  distrotest-gen,
  gen,
  system,
}:
let
  offered = release: (release.supported or false) && (release.images or { }) ? ${system};

  forRelease =
    distro: version: release:
    let
      image = release.images.${system};
      name = image.name or "distrotest-image-${distro}-${version}-${system}.qcow2";
      base =
        if image ? oci then
          fetchContainerDisk {
            ref = image.oci;
            inherit (image) hash;
            inherit name;
          }
        else
          fetchurl {
            inherit (image) url hash;
            inherit name;
          };
      prepared =
        runCommand "distrotest-${distro}-${version}-prepared"
          {
            # the patcher is pure Go (no qemu-img, no VM, no root)
            nativeBuildInputs = [ distrotest-gen ];
            passthru = {
              inherit base release;
            };
          }
          ''
            distrotest-gen image patch --distro ${lib.escapeShellArg "${distro}/${version}"} \
              --system ${system} --standalone ${base} -o "$out"
          '';
    in
    {
      inherit release base prepared;
    };
in
# { <distro>.<version> = { release; base; prepared; }; }
builtins.mapAttrs (
  distro: data: builtins.mapAttrs (forRelease distro) (lib.filterAttrs (_: offered) data.releases)
) gen
