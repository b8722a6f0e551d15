package imagebuild

import (
	"fmt"
	"slices"
)

// Shapes are stand-in images built from Debian packages that reproduce the
// disk and boot layout of another distro family: partitions, filesystems
// with that family's options, where the kernel and initrd live, boot
// entries and the initrd generator. They are test shapes for distrotest's
// image discovery and backdoor strategies, NOT those distros: the userland
// is Debian's (trixie), so packages, SELinux policy and the distro's own
// kernel are not reproduced.
//
// Requested as distro "shape": shape/el, shape/fedora, shape/ubuntu.
const ShapeDistro = "shape"

// Shape names.
const (
	ShapeEL     = "el"     // Rocky/Alma/CentOS Stream GenericCloud
	ShapeFedora = "fedora" // Fedora Cloud Base 40–43
	ShapeUbuntu = "ubuntu" // Ubuntu 24.04 server cloudimg
)

// More GPT type codes used by the shapes.
const (
	TypeXBOOTLDR = "EA00" // Linux extended boot, BC13C2FF-59E6-4262-A352-B275FD6F7172
)

// shapeSuite is the Debian suite every shape is built from: trixie's
// kernel (6.12) matches EL10's, its dracut and mkfs.btrfs (6.14, which
// has --subvol) are new enough.
const shapeSuite = "trixie"

// shapeSpec is what differs between shapes.
type shapeSpec struct {
	name     string
	packages []string // added to the common base
	drop     []string // removed from the common base
	// initrdGlob names the initrd next to vmlinuz-<kver> in /boot, with
	// %s for the kernel version.
	initrd string
	// hooks are mmdebstrap --customize-hook scripts ($1 is the tree).
	hooks        []string
	fstabByLabel bool
	bls          bool // write a BLS entry into /boot/loader/entries
	bootLinks    bool // vmlinuz and initrd.img symlinks at the top of /boot
	networkd     bool // the image must have systemd-networkd
	parts        []partSpec
}

// partSpec is one partition in disk order; size 0 takes the rest.
type partSpec struct {
	number     int
	typ        string
	fs, label  string
	mount      string
	sizeMiB    int64
	mkfs       []string
	subvolumes []string // btrfs: the first holds the mount's tree
	fstab      string   // options, dump and pass
}

// regenerateDracut replaces the initrd that the kernel's postinst built
// with a generic (non-hostonly) dracut initrd named as EL and Fedora name
// it, and removes Debian's /vmlinuz and /initrd.img links.
const regenerateDracut = `set -e
for d in "$1"/usr/lib/modules/*; do
  v=${d##*/}
  chroot "$1" depmod -a "$v"
  chroot "$1" dracut --quiet --force --no-hostonly --kver "$v" "/boot/initramfs-$v.img"
done
rm -f "$1"/boot/initrd.img-* "$1"/initrd.img "$1"/initrd.img.old "$1"/vmlinuz "$1"/vmlinuz.old
`

// remove9p deletes the 9p modules, as RHEL kernels have none (the initrd
// is made afterwards, so it has none either).
const remove9p = `set -e
rm -rf "$1"/usr/lib/modules/*/kernel/fs/9p "$1"/usr/lib/modules/*/kernel/net/9p
`

// dropRootLinks removes Debian's /vmlinuz and /initrd.img links; the
// Ubuntu shape has them in /boot (link_in_boot).
const dropRootLinks = `rm -f "$1"/initrd.img "$1"/initrd.img.old "$1"/vmlinuz "$1"/vmlinuz.old
`

var shapes = []shapeSpec{
	{
		name:     ShapeEL,
		packages: []string{"dracut", "network-manager", "xfsprogs"},
		drop:     []string{"initramfs-tools"},
		initrd:   "initramfs-%s.img",
		hooks:    []string{remove9p, regenerateDracut},
		bls:      true,
		// AlmaLinux/CentOS Stream order: p1 BIOS boot, p2 ESP, p3 /boot, p4 /.
		parts: []partSpec{
			{number: 1, typ: TypeBIOSBoot, sizeMiB: 1},
			{number: 2, typ: TypeESP, fs: "vfat", label: "EFI", mount: "/boot/efi", sizeMiB: 200, fstab: "umask=0077,shortname=winnt 0 2"},
			{number: 3, typ: TypeLinux, fs: "xfs", label: "boot", mount: "/boot", sizeMiB: 1024, fstab: "defaults 0 0"},
			{number: 4, typ: TypeLinux, fs: "xfs", label: "root", mount: "/", mkfs: []string{"-m", "bigtime=0,inobtcount=0"}, fstab: "defaults 0 0"},
		},
	},
	{
		name:     ShapeFedora,
		packages: []string{"btrfs-progs", "dracut", "network-manager"},
		drop:     []string{"initramfs-tools"},
		initrd:   "initramfs-%s.img",
		hooks:    []string{regenerateDracut},
		bls:      true,
		// kiwi order: BIOS boot, ESP, ext4 /boot, btrfs root labelled fedora.
		parts: []partSpec{
			{number: 1, typ: TypeBIOSBoot, sizeMiB: 1},
			{number: 2, typ: TypeESP, fs: "vfat", label: "EFI", mount: "/boot/efi", sizeMiB: 200, fstab: "umask=0077,shortname=winnt 0 2"},
			{number: 3, typ: TypeLinux, fs: "ext4", label: "boot", mount: "/boot", sizeMiB: 1000, fstab: "defaults 1 2"},
			{number: 4, typ: TypeLinux, fs: "btrfs", label: "fedora", mount: "/", subvolumes: []string{"root", "home"}, fstab: "compress=zstd:1 0 0",
				// kiwi copies the tree with compress=zstd:1 mounted: files are zstd extents
				mkfs: []string{"--compress", "zstd:1"}},
		},
	},
	{
		name:         ShapeUbuntu,
		initrd:       "initrd.img-%s",
		hooks:        []string{dropRootLinks},
		fstabByLabel: true,
		bootLinks:    true,
		networkd:     true,
		// 24.04: p14 BIOS boot, p15 ESP, p16 ext4 BOOT (XBOOTLDR), p1 root.
		parts: []partSpec{
			{number: 14, typ: TypeBIOSBoot, sizeMiB: 4},
			{number: 15, typ: TypeESP, fs: "vfat", label: "UEFI", mount: "/boot/efi", sizeMiB: 106, fstab: "umask=0077 0 1"},
			{number: 16, typ: TypeXBOOTLDR, fs: "ext4", label: "BOOT", mount: "/boot", sizeMiB: 913, fstab: "defaults 0 2"},
			{number: 1, typ: TypeLinux, fs: "ext4", label: "cloudimg-rootfs", mount: "/", fstab: "discard,errors=remount-ro 0 1"},
		},
	},
}

func shapeFor(name string) (shapeSpec, bool) {
	for _, s := range shapes {
		if s.name == name {
			return s, true
		}
	}
	return shapeSpec{}, false
}

// shapeLayout lays the partitions out in disk order from 1 MiB, aligned to
// 1 MiB; the partition of size 0 ends at the last aligned sector before the
// backup GPT.
func shapeLayout(size int64, parts []partSpec) (Layout, error) {
	if size%sectorSize != 0 {
		return Layout{}, fmt.Errorf("disk size %d is not a multiple of %d", size, sectorSize)
	}
	end := (size/sectorSize - gptBackupSectors - 1) / align * align
	var fixed int64
	for _, p := range parts {
		fixed += p.sizeMiB << 20 / sectorSize
	}
	l := Layout{DiskSize: size}
	first := int64(align)
	for _, p := range parts {
		n := p.sizeMiB << 20 / sectorSize
		if p.sizeMiB == 0 {
			n = end - align - fixed
			if n*sectorSize < minRootSize {
				return Layout{}, fmt.Errorf("disk size %d is too small for partition %d: need at least %d MiB more", size, p.number, (minRootSize-n*sectorSize)>>20+1)
			}
		}
		l.Partitions = append(l.Partitions, Partition{
			Number: p.number, Type: p.typ, Filesystem: p.fs, Label: p.label,
			Mount: p.mount, MkfsOptions: slices.Clone(p.mkfs), Subvolumes: slices.Clone(p.subvolumes), Fstab: p.fstab,
			First: first, Last: first + n - 1,
		})
		first += n
	}
	if first > end {
		return Layout{}, fmt.Errorf("disk size %d is too small for the partitions (%d MiB)", size, first*sectorSize>>20)
	}
	return l, nil
}

// Mounted returns the partitions with a filesystem, deepest mount point
// first (so /boot/efi is split off the tree before /boot, and / is last).
func (l Layout) Mounted() []Partition {
	var out []Partition
	for _, p := range l.Partitions {
		if p.Filesystem != "" && p.Mount != "" {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b Partition) int { return len(b.Mount) - len(a.Mount) })
	return out
}

// RootPartition returns the partition mounted at /.
func (l Layout) RootPartition() (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Mount == "/" {
			return p, true
		}
	}
	return Partition{}, false
}

// BootPartition returns the partition mounted at /boot, if any.
func (l Layout) BootPartition() (Partition, bool) {
	for _, p := range l.Partitions {
		if p.Mount == "/boot" {
			return p, true
		}
	}
	return Partition{}, false
}
