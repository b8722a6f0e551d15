# fetchContainerDisk { ref; hash; name ? ...; }: the disk of a KubeVirt
# containerDisk (an OCI image whose one layer holds disk/disk.img) as a
# fixed-output derivation.
#
#   fetchContainerDisk {
#     ref = "quay.io/containerdisks/debian:13@sha256:<manifest digest>";
#     hash = "sha256-…";   # of disk/disk.img: `distrotest-gen image pull REF` prints it
#   }
#
# The output hash is the sha256 of disk/disk.img itself, not a registry digest:
# the layer blob's digest hashes a (compressed) tar around the disk, so an
# output pinned by it would be the tar and need a second derivation to unpack,
# and it changes whenever the containerDisk is rebuilt with other compression
# or tar metadata around the same disk. The disk's own hash is the one upstream
# publishes for its cloud image (containerDisks wrap it unchanged; KubeVirt's
# builder records it as the `shasum` label), so the same pin serves a `url`
# source too, and once the disk is in a store or a binary cache, the pin never
# expires, whatever happens to the tag or the registry. The manifest digest in
# `ref` and the blob digest are still verified by distrotest-gen while it pulls.
#
# Credentials: the builder has no Docker config, so only anonymous pulls work
# (public containerDisks, or a local registry).
{
  lib,
  runCommand,
  distrotest-gen,
  # CA certificates for HTTPS registries (null: the builder has none)
  cacert ? null,
  system,
}:
{
  ref,
  hash,
  name ? "distrotest-containerdisk.img",
}:
if builtins.match ".+@sha256:[0-9a-f]{64}" ref == null then
  throw "fetchContainerDisk: ref \"${ref}\" is not pinned by digest: use registry/repository[:tag]@sha256:<digest> (distrotest-gen image pull prints the digest)"
else
  runCommand name
    (
      {
        nativeBuildInputs = [ distrotest-gen ];
        outputHash = hash;
        outputHashMode = "flat";
        outputHashAlgo = "sha256";
        impureEnvVars = [
          "http_proxy"
          "https_proxy"
          "HTTP_PROXY"
          "HTTPS_PROXY"
          "no_proxy"
          "NO_PROXY"
        ];
        preferLocalBuild = true;
      }
      // (if cacert == null then { } else { SSL_CERT_FILE = "${cacert}/etc/ssl/certs/ca-bundle.crt"; })
    )
    ''
      export HOME="$TMPDIR" DOCKER_CONFIG="$TMPDIR/docker"
      distrotest-gen image pull --system ${system} ${lib.escapeShellArg ref} -o "$out"
    ''
