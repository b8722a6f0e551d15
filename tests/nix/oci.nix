# The OCI image source through the real lib/: a release whose image is given
# as `oci` (a KubeVirt containerDisk pinned by digest) in the generated data
# gets its base image from lib/fetch-containerdisk.nix, a fixed-output
# derivation that runs `distrotest-gen image pull` against the registry.
# Built by scripts/check-nix.sh (stage 9) against a docker-registry it starts
# on 127.0.0.1; the stand-in package set builds distrotest-gen.
{
  # `go env GOMODCACHE`
  goModCache,
  # host tools PATH for the stand-in (where `go` is)
  hostPath ? null,
  # the containerDisk, pinned: 127.0.0.1:PORT/repo@sha256:…
  ref,
  # SRI sha256 of its disk/disk.img
  hash,
}:
let
  pkgs = import ./stand-in.nix (
    { inherit goModCache; } // (if hostPath == null then { } else { inherit hostPath; })
  );
  real = import ../../gen;
  # debian 13 as generated, with its image given as a containerDisk
  gen = real // {
    debian = real.debian // {
      releases = real.debian.releases // {
        "13" = real.debian.releases."13" // {
          images.x86_64-linux = {
            oci = ref;
            inherit hash;
            name = "distrotest-oci-check.img";
          };
        };
      };
    };
  };
  distrotest = import ../../lib { inherit pkgs gen; };
in
{
  # what the distro data gives (the base of debian."13")
  base = distrotest.debian.images."13";
  # the same through the function users call for vmTest images
  direct = distrotest.fetchContainerDisk {
    inherit ref hash;
    name = "distrotest-oci-check-direct.img";
  };
}
