// Package imagebuild builds cloud-like distro disk images locally from
// packages, so that tests and the quickstart have a base image on a machine
// without internet access to the distro's cloud image, and so that an
// expired upstream URL is not a dead end.
//
// For Debian it runs mmdebstrap into a temporary directory and assembles the
// disk without loop devices or mounts: the root filesystem is made with
// `mkfs.ext4 -d`, the ESP with mkfs.vfat, the GPT with sgdisk, the partition
// images are copied into a sparse raw disk, and `qemu-img convert` writes the
// qcow2. The layout follows Debian's official cloud images (p14 BIOS boot,
// p15 ESP, p1 ext4 root labelled "root"), but no boot loader is installed:
// the image is meant for direct kernel boot with root=/dev/vda1 and carries
// its kernel and initrd in /boot.
//
// Results are cached under <cache>/images/<distro>-<release>-<arch>-<key12>/
// (disk.qcow2 and build.json), keyed by a hash of the recipe. Building needs
// root (mmdebstrap --mode=root) and the host tools mmdebstrap, mkfs.ext4,
// mkfs.vfat, sgdisk and qemu-img; a cached image needs neither.
//
// This package is not for patching images (see imagepatch) nor for fetching
// upstream ones. Its unit tests need no tools; the integration test builds
// debian/13 (about a minute, needs root and network) and runs only with
// DISTROTEST_VM_TESTS=1:
//
//	DISTROTEST_VM_TESTS=1 go test ./cmd/internal/imagebuild/ -run Integration -v
package imagebuild
