// Package ociimage moves disk images through OCI registries with
// go-containerregistry.
//
// Two kinds of artifact are understood:
//
//   - KubeVirt containerDisks: an image with one layer holding
//     disk/disk.img (a qcow2 or raw disk, unchanged). [PullDisk] downloads
//     the disk of such an image into the cache, verifying the manifest
//     digest of a pinned reference (ref@sha256:...) and the blob digest of
//     the layer; [PushContainerDisk] publishes a disk (or the disk of a
//     prepared image, made self-contained) in the same format, so KubeVirt,
//     crun-vm and distrotest can all boot it.
//   - Prepared images: the directory distrotest-gen image patch writes
//     (disk.qcow2, vmlinuz, initrd, manifest.json) as an OCI artifact with
//     one blob per file ([PushPrepared], [PullPrepared]), tagged with the
//     prepared-image cache key, so a fleet of CI machines prepares each
//     image once.
//
// Credentials come from the Docker config (authn.DefaultKeychain). Plain
// HTTP is used only for loopback registries (127.0.0.0/8, ::1, localhost)
// or when [Options.Insecure] asks for it; go-containerregistry would also
// fall back to HTTP for private (RFC 1918) addresses, which this package
// refuses.
//
// Every download goes into a temporary directory beside its destination
// and is renamed into place after verification: on any error (wrong
// digest, missing tag, unreachable registry, a layer that is not a disk)
// nothing is left in the cache.
//
// Only distrotest-gen links this package; the runner must not (its
// dependency test checks go list -deps). The unit tests run against
// go-containerregistry's in-memory registry and boot nothing; the tests
// against a real registry (Debian's docker-registry on 127.0.0.1) are
// tests/e2e/oci_test.go (DISTROTEST_VM_TESTS=1) and stage 7b of
// scripts/check-nix.sh.
package ociimage
