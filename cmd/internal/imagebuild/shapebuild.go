package imagebuild

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PartitionInfo is a built partition as build.json records it.
type PartitionInfo struct {
	Number     int    `json:"number"`
	Type       string `json:"type"` // sgdisk code
	Filesystem string `json:"filesystem,omitempty"`
	Label      string `json:"label,omitempty"`
	UUID       string `json:"uuid,omitempty"` // filesystem UUID (vfat: volume id XXXX-XXXX)
	Mount      string `json:"mount,omitempty"`
	Subvolume  string `json:"subvolume,omitempty"` // btrfs subvolume holding Mount's tree
}

// shapeTools are the host tools a shape build needs besides buildTools.
// btrfs is made by the tree's own mkfs.btrfs (trixie's has --subvol).
var shapeTools = []tool{{"mkfs.xfs", "xfsprogs"}}

func (b *builder) shape() shapeSpec {
	s, ok := shapeFor(b.recipe.Shape)
	if !ok {
		panic("imagebuild: recipe with unknown shape " + b.recipe.Shape) // recipeFor made it
	}
	return s
}

// shapeFilesystems configures the tree, splits it at the mount points
// (deepest first) and makes one filesystem image per partition:
// part<N>.img.
func (b *builder) shapeFilesystems(ctx context.Context) error {
	shape := b.shape()
	layout := b.recipe.Layout
	uuids := map[int]string{}
	for _, p := range layout.Mounted() {
		var err error
		if p.Filesystem == "vfat" {
			var id [4]byte
			_, err = rand.Read(id[:])
			uuids[p.Number] = fmt.Sprintf("%X-%X", id[:2], id[2:])
		} else {
			uuids[p.Number], err = newUUID()
		}
		if err != nil {
			return err
		}
	}
	if err := b.configureShape(shape, uuids); err != nil {
		return fmt.Errorf("configuring the %s shape: %w", shape.name, err)
	}
	tree := b.path("rootfs")
	dirs := map[int]string{}
	for _, p := range layout.Mounted() {
		if p.Mount == "/" {
			dirs[p.Number] = tree
			continue
		}
		mp := filepath.Join(tree, p.Mount)
		if p.Filesystem == "vfat" { // made empty
			if err := os.MkdirAll(mp, 0o700); err != nil {
				return err
			}
			continue
		}
		dir := b.path(fmt.Sprintf("part%d", p.Number))
		if err := os.Rename(mp, dir); err != nil {
			return fmt.Errorf("splitting %s off the tree: %w", p.Mount, err)
		}
		if err := os.Mkdir(mp, 0o755); err != nil {
			return err
		}
		dirs[p.Number] = dir
	}
	conf := b.path("mke2fs.conf")
	if err := os.WriteFile(conf, mke2fsConf, 0o644); err != nil {
		return err
	}
	// The root last: the other trees were split off it.
	parts := layout.Mounted()
	slices.SortStableFunc(parts, func(a, c Partition) int {
		return boolInt(a.Mount == "/") - boolInt(c.Mount == "/")
	})
	for _, p := range parts {
		img := b.path(fmt.Sprintf("part%d.img", p.Number))
		if err := sizedFile(img, p.Size()); err != nil {
			return err
		}
		if err := b.mkfs(ctx, p, uuids[p.Number], dirs[p.Number], img, conf); err != nil {
			return fmt.Errorf("making %s on partition %d (%s): %w", p.Filesystem, p.Number, p.Mount, err)
		}
		if dir := dirs[p.Number]; dir != "" && dir != tree {
			if err := removeTree(dir); err != nil {
				return err
			}
		}
	}
	return removeTree(tree)
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// mkfs makes filesystem p.Filesystem in the image file img with the
// content of dir ("" for an empty one).
func (b *builder) mkfs(ctx context.Context, p Partition, uuid, dir, img, mke2fsConf string) error {
	var c command
	switch p.Filesystem {
	case "vfat":
		c = command{path: b.tools["mkfs.vfat"], args: []string{"-n", p.Label, "-i", strings.ReplaceAll(uuid, "-", ""), img}}
	case "ext4":
		c = command{
			path: b.tools["mkfs.ext4"],
			args: append(append([]string{"-F", "-q", "-t", "ext4", "-L", p.Label, "-U", uuid}, p.MkfsOptions...), "-d", dir, img),
			env:  []string{"MKE2FS_CONFIG=" + mke2fsConf},
		}
	case "xfs":
		proto := img + ".proto"
		f, err := os.Create(proto)
		if err != nil {
			return err
		}
		st, err := writeProtofile(f, dir)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		b.log.Debug("xfs protofile", "partition", p.Number, "entries", st.Entries, "hard_links_copied", st.HardLinks, "sticky_dropped", st.Sticky)
		args := []string{"-q", "-f", "-L", p.Label, "-m", "uuid=" + uuid}
		c = command{path: b.tools["mkfs.xfs"], args: append(append(args, p.MkfsOptions...), "-p", proto, img)}
	case "btrfs":
		// mkfs.btrfs --subvol needs the subvolume as a directory of the
		// rootdir: top/<first subvolume> is the tree, the others are empty.
		top := b.path(fmt.Sprintf("part%d-top", p.Number))
		if err := os.Mkdir(top, 0o755); err != nil {
			return err
		}
		tree := dir
		if len(p.Subvolumes) > 0 {
			tree = filepath.Join(top, p.Subvolumes[0])
			if err := os.Rename(dir, tree); err != nil {
				return err
			}
			defer os.Rename(tree, dir) // the caller removes dir
			for _, sv := range p.Subvolumes[1:] {
				if err := os.Mkdir(filepath.Join(top, sv), 0o755); err != nil {
					return err
				}
			}
		} else {
			top = dir
		}
		args := []string{"-q", "-f", "-L", p.Label, "-U", uuid, "--rootdir", top}
		for _, sv := range p.Subvolumes {
			args = append(args, "--subvol", "rw:"+sv)
		}
		args = append(append(args, p.MkfsOptions...), img)
		// Run the tree's own mkfs.btrfs through the tree's loader and
		// libraries: the host's (bookworm, 6.2) has no --subvol.
		c = command{
			path: filepath.Join(tree, "usr/lib64/ld-linux-x86-64.so.2"),
			args: append([]string{"--library-path", filepath.Join(tree, "usr/lib/x86_64-linux-gnu"), filepath.Join(tree, "usr/sbin/mkfs.btrfs")}, args...),
		}
	default:
		return fmt.Errorf("filesystem %q is not supported by the image build", p.Filesystem)
	}
	_, err := run(ctx, b.log, c)
	return err
}

// configureShape writes hostname, hosts, fstab and the boot entry, finds
// the kernel and records build.json's facts.
func (b *builder) configureShape(shape shapeSpec, uuids map[int]string) error {
	root, err := os.OpenRoot(b.path("rootfs"))
	if err != nil {
		return err
	}
	defer root.Close()
	layout := b.recipe.Layout
	rootPart, ok := layout.RootPartition()
	if !ok {
		return fmt.Errorf("layout has no root partition")
	}
	host := b.recipe.Hostname
	files := []struct{ path, data string }{
		{"etc/hostname", host + "\n"},
		{"etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\t" + host + "\n\n" +
			"::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"},
		{"etc/fstab", fstab(layout, uuids, shape.fstabByLabel)},
		{"etc/os-release", b.recipe.OSRelease}, // replaces Debian's link to ../usr/lib/os-release
	}
	if err := writeRootFiles(root, files); err != nil {
		return err
	}
	if shape.networkd {
		if _, err := root.Stat("usr/lib/systemd/systemd-networkd"); err != nil {
			return fmt.Errorf("systemd-networkd is missing from the image: %w", err)
		}
	}
	kernel, initrd, version, err := findKernel(root, shape.initrd)
	if err != nil {
		return err
	}
	pkgs, systemd, err := b.checkPackages(root)
	if err != nil {
		return err
	}
	if slices.Contains(shape.hooks, remove9p) {
		if err := checkNo9p(root, version); err != nil {
			return err
		}
	}
	bootPart, hasBoot := layout.BootPartition()
	rootArgs := "root=UUID=" + uuids[rootPart.Number] + " ro"
	if rootPart.Filesystem == "btrfs" && len(rootPart.Subvolumes) > 0 {
		rootArgs += " rootflags=subvol=" + rootPart.Subvolumes[0]
	}
	info := BuildInfo{
		Version: 1, Key: b.recipe.Key(), Recipe: b.recipe, Disk: DiskFile, DiskFormat: "qcow2",
		RootDevice: fmt.Sprintf("/dev/vda%d", rootPart.Number), RootUUID: uuids[rootPart.Number],
		Filesystem: rootPart.Filesystem, Bootloader: "none",
		Kernel: kernel, Initrd: initrd, KernelVersion: version, SystemdVersion: systemd, Packages: pkgs,
		Shape: shape.name, KernelArgs: rootArgs,
	}
	if rootPart.Filesystem == "btrfs" && len(rootPart.Subvolumes) > 0 {
		info.RootSubvolume = rootPart.Subvolumes[0]
	}
	if hasBoot { // paths relative to the /boot filesystem
		info.BootPartition = bootPart.Number
		info.Kernel, info.Initrd = strings.TrimPrefix(kernel, "boot/"), strings.TrimPrefix(initrd, "boot/")
	}
	for _, p := range layout.Partitions {
		pi := PartitionInfo{Number: p.Number, Type: p.Type, Filesystem: p.Filesystem, Label: p.Label, UUID: uuids[p.Number], Mount: p.Mount}
		if len(p.Subvolumes) > 0 {
			pi.Subvolume = p.Subvolumes[0]
		}
		info.Partitions = append(info.Partitions, pi)
	}
	if shape.bls {
		entry, err := writeBLS(root, b.recipe, info, hasBoot)
		if err != nil {
			return fmt.Errorf("writing the boot entry: %w", err)
		}
		info.BootEntry = entry
	}
	if shape.bootLinks {
		for link, target := range map[string]string{"boot/vmlinuz": filepath.Base(kernel), "boot/initrd.img": filepath.Base(initrd)} {
			if err := root.Remove(link); err != nil && !os.IsNotExist(err) {
				return err
			}
			if err := root.Symlink(target, link); err != nil {
				return err
			}
		}
	}
	b.info = info
	b.rootUUID = info.RootUUID
	b.log.Debug("shape configured", "shape", shape.name, "kernel", version, "systemd", systemd, "packages", len(pkgs))
	return nil
}

// checkNo9p fails when a 9p module is left in the tree.
func checkNo9p(root *os.Root, version string) error {
	for _, d := range []string{"kernel/fs/9p", "kernel/net/9p"} {
		p := "usr/lib/modules/" + version + "/" + d
		if _, err := root.Stat(p); err == nil {
			return fmt.Errorf("9p modules were not removed: %s exists", p)
		}
	}
	return nil
}

// fstab mounts every partition with a mount point, by UUID or by label,
// the root first; a btrfs root mounts its subvolumes.
func fstab(l Layout, uuids map[int]string, byLabel bool) string {
	var b strings.Builder
	b.WriteString("# <file system> <mount point> <type> <options> <dump> <pass>\n")
	parts := l.Mounted()
	slices.Reverse(parts) // shallowest first
	for _, p := range parts {
		spec := "UUID=" + uuids[p.Number]
		if byLabel {
			spec = "LABEL=" + p.Label
		}
		opts, rest, _ := strings.Cut(p.Fstab, " ")
		if p.Filesystem == "btrfs" && len(p.Subvolumes) > 0 {
			fmt.Fprintf(&b, "%s\t%s\t%s\tsubvol=%s,%s\t%s\n", spec, p.Mount, p.Filesystem, p.Subvolumes[0], opts, rest)
			for _, sv := range p.Subvolumes[1:] {
				fmt.Fprintf(&b, "%s\t%s\t%s\tsubvol=%s,%s\t%s\n", spec, filepath.Join(p.Mount, sv), p.Filesystem, sv, opts, rest)
			}
			continue
		}
		fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\n", spec, p.Mount, p.Filesystem, opts, rest)
	}
	return b.String()
}

// writeBLS writes a Boot Loader Specification entry, as Fedora's and EL's
// kernel-install does, into boot/loader/entries/<machine-id>-<kver>.conf
// and returns its path relative to the filesystem that holds /boot.
func writeBLS(root *os.Root, r Recipe, info BuildInfo, separateBoot bool) (string, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	name := fmt.Sprintf("loader/entries/%x-%s.conf", id, info.KernelVersion)
	prefix := "/boot/"
	if separateBoot {
		prefix = "/"
	}
	entry := fmt.Sprintf("title Distrotest %s shape (%s)\nversion %s\nlinux %s\ninitrd %s\noptions %s no_timer_check console=tty1 console=ttyS0,115200n8\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class distrotest\n",
		r.Shape, info.KernelVersion, info.KernelVersion,
		prefix+"vmlinuz-"+info.KernelVersion, prefix+filepath.Base(info.Initrd), info.KernelArgs)
	if err := root.MkdirAll("boot/loader/entries", 0o755); err != nil {
		return "", err
	}
	if err := root.WriteFile("boot/"+name, []byte(entry), 0o644); err != nil {
		return "", err
	}
	if !separateBoot {
		return "boot/" + name, nil
	}
	return name, nil
}
