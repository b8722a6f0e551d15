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
// The stand-in shapes (shape/el, shape/fedora, shape/ubuntu; shape.go) are
// built the same way from trixie packages but laid out as those families'
// cloud images: the tree is split at its mount points, xfs is made with
// `mkfs.xfs -p` from a generated protofile, btrfs (with subvolumes) with the
// tree's own mkfs.btrfs run through the tree's loader, ext4 /boot with
// `mkfs.ext4 -d`; mmdebstrap customize hooks remove the 9p modules (EL) and
// make a generic dracut initrd; BLS entries are written as kernel-install
// writes them. They are test shapes, not those distros.
//
// Results are cached under <cache>/images/<distro>-<release>-<arch>-<key12>/
// (disk.qcow2 and build.json), keyed by a hash of the recipe. Building needs
// root (mmdebstrap --mode=root) and the host tools mmdebstrap, mkfs.ext4,
// mkfs.vfat, sgdisk and qemu-img (and mkfs.xfs for the shapes); a cached
// image needs neither.
//
// This package is not for patching images (see imagepatch) nor for fetching
// upstream ones. Its unit tests need no tools (the protofile test also runs
// mkfs.xfs when installed); the integration tests build debian/13 and the
// shapes (minutes, need root and network; cached afterwards) and run only
// with DISTROTEST_VM_TESTS=1:
//
//	DISTROTEST_VM_TESTS=1 go test ./cmd/internal/imagebuild/ -run Integration -v
package imagebuild
