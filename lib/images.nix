# Images: the generated data in gen/ (one file per distro, see
# distros/*.hcl) turned into a fetched base image and a prepared image per
# supported release that has an image for `system`.
#
# A prepared image is a directory (disk.qcow2, vmlinuz, initrd, manifest.json)
# written by `distrotest-gen image patch --spec` with the release's patchSpec
# (lib/prepare-image.nix); it depends only on the base image, the patcher and
# that release's own facts, so every test of the release shares it and
# editing one distro's .hcl rebuilds only the images whose facts changed.
{
  lib,
  fetchurl,
  # lib/fetch-containerdisk.nix, for images given as `oci` (a containerDisk)
  fetchContainerDisk,
  # lib/prepare-image.nix
  prepare,
  gen,
  system,
}:
let
  # releases.nix says why the others are not offered
  offered =
    release:
    (release.supported or false) && (release.notOffered or null) == null && (release.images or { }) ? ${system};

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
      prepared = prepare {
        image = base;
        distro = "${distro}/${version}";
        spec = release.patchSpec or null;
        name = "distrotest-${distro}-${version}-prepared";
        passthru = {
          inherit base release;
        };
      };
    in
    {
      inherit release base prepared;
    };
in
# { <distro>.<version> = { release; base; prepared; }; }
builtins.mapAttrs (
  distro: data: builtins.mapAttrs (forRelease distro) (lib.filterAttrs (_: offered) data.releases)
) gen
