package imagebuild

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
)

// TestIntegrationShapes builds (or takes from the cache) each stand-in
// shape and checks it without booting it, with host tools and the
// project's own readers: the GPT types, the filesystems with the family's
// options (xfs_db, btrfs inspect-internal, e2fsck), the BLS entry, and the
// initrd's contents (9p modules absent on the EL shape). CI builds the
// shapes in its images stage, so this test normally reads cached images.
func TestIntegrationShapes(t *testing.T) {
	integration(t)
	for _, tool := range []string{"xfs_db", "xfs_repair", "btrfs"} {
		if _, err := lookPath(tool); err != nil {
			t.Fatalf("the shapes test needs %s: run make setup", tool)
		}
	}
	for _, shape := range []string{ShapeEL, ShapeFedora, ShapeUbuntu} {
		t.Run(shape, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
			defer cancel()
			req := Request{Distro: ShapeDistro, Release: shape, Arch: "x86_64-linux"}
			path, err := Build(ctx, req, testOptions(t, ""))
			if err != nil {
				t.Fatal(err)
			}
			info, err := LoadInfo(filepath.Dir(path))
			if err != nil {
				t.Fatal(err)
			}
			raw := filepath.Join(t.TempDir(), "disk.raw")
			output(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, raw)
			parts := sgdiskPartitions(t, output(t, "sgdisk", "-p", raw))
			types := map[int]string{}
			for n, p := range parts {
				types[n] = p.code
			}
			want := map[int]string{}
			for _, p := range info.Partitions {
				want[p.Number] = p.Type
			}
			if diff := cmp.Diff(want, types); diff != "" {
				t.Errorf("partition types (-build.json +sgdisk):\n%s", diff)
			}
			part := func(n int) string { // the partition as its own file
				t.Helper()
				p := parts[n]
				f := filepath.Join(t.TempDir(), fmt.Sprintf("p%d.img", n))
				output(t, "dd", "if="+raw, "of="+f, "bs=4M", "iflag=skip_bytes,count_bytes", "conv=sparse", "status=none",
					fmt.Sprintf("skip=%d", p.first*512), fmt.Sprintf("count=%d", (p.last-p.first+1)*512))
				return f
			}
			img, err := diskimage.Open(raw)
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			bootFiles := func() diskimage.Files {
				t.Helper()
				p, err := img.Partition(info.BootPartition)
				if err != nil {
					t.Fatal(err)
				}
				f, err := img.Files(p)
				if err != nil {
					t.Fatal(err)
				}
				return f
			}

			checkIdentity(t, img, shape)
			switch shape {
			case ShapeEL:
				root, boot := part(4), part(3)
				// EL's root: -m bigtime=0,inobtcount=0; /boot: mkfs defaults (both on).
				checkXFS(t, root, "root", info.RootUUID, false)
				checkXFS(t, boot, "boot", partUUID(info, 3), true)
				initrd := readBootFile(t, bootFiles(), info.Initrd)
				names := cpioNames(t, initrd)
				for _, n := range names {
					if strings.Contains(n, "/9p") {
						t.Errorf("initrd has %s: the EL shape must have no 9p", n)
					}
				}
				for _, w := range []string{"/kernel/fs/xfs/xfs.ko", "/kernel/drivers/block/virtio_blk.ko", "etc/initrd-release"} {
					if !hasName(names, w) {
						t.Errorf("initrd lacks %s", w)
					}
				}
				checkBLS(t, bootFiles(), info, "")
			case ShapeFedora:
				root := part(4)
				super := output(t, "btrfs", "inspect-internal", "dump-super", root)
				if !strings.Contains(super, "label\t\t\tfedora") || !strings.Contains(super, info.RootUUID) {
					t.Errorf("btrfs superblock: want label fedora, fsid %s:\n%s", info.RootUUID, super)
				}
				tree := output(t, "btrfs", "inspect-internal", "dump-tree", "-t", "root", root)
				for _, sv := range []string{"name root", "name home"} {
					if !strings.Contains(tree, sv) {
						t.Errorf("btrfs has no subvolume %q", strings.TrimPrefix(sv, "name "))
					}
				}
				output(t, "btrfs", "check", "--readonly", root)
				// Files are zstd extents, as kiwi's compress=zstd:1 copy makes
				// them (btrfs_compression_type 3), and distrotest's reader
				// reads them byte-exact: coreutils' files against dpkg's sums.
				if fsTree := output(t, "btrfs", "inspect-internal", "dump-tree", "-t", "256", root); !strings.Contains(fsTree, "compression 3") {
					t.Error("the root subvolume has no zstd-compressed extent")
				}
				rp, err := img.Partition(4)
				if err != nil {
					t.Fatal(err)
				}
				rootFiles, err := img.Btrfs(rp, "root")
				if err != nil {
					t.Fatal(err)
				}
				checkPackageSums(t, rootFiles, "coreutils")
				output(t, "e2fsck", "-fn", part(3))
				names := cpioNames(t, readBootFile(t, bootFiles(), info.Initrd))
				for _, w := range []string{"/kernel/fs/btrfs/btrfs.ko", "/kernel/fs/9p/9p.ko", "etc/initrd-release"} {
					if !hasName(names, w) {
						t.Errorf("initrd lacks %s", w)
					}
				}
				checkBLS(t, bootFiles(), info, "rootflags=subvol=root")
			case ShapeUbuntu:
				output(t, "e2fsck", "-fn", part(1))
				output(t, "e2fsck", "-fn", part(16))
				if l := strings.TrimSpace(output(t, "e2label", part(16))); l != "BOOT" {
					t.Errorf("p16 label %q, want BOOT", l)
				}
				ls := output(t, "debugfs", "-R", "ls -l /", part(16))
				for _, w := range []string{info.Kernel, info.Initrd, "vmlinuz", "initrd.img"} {
					if !strings.Contains(ls, " "+w+"\n") && !strings.Contains(ls, " "+w+" ") {
						t.Errorf("BOOT lacks %s:\n%s", w, ls)
					}
				}
				if rootBoot := output(t, "debugfs", "-R", "ls /boot", part(1)); strings.Contains(rootBoot, "vmlinuz") {
					t.Errorf("the root's /boot is not empty:\n%s", rootBoot)
				}
				names := cpioNames(t, readBootFile(t, bootFiles(), info.Initrd))
				if !hasName(names, "scripts/init-bottom") || hasName(names, "etc/initrd-release") {
					t.Errorf("initrd is not an initramfs-tools one (scripts/init-bottom, no initrd-release)")
				}
			}
		})
	}
}

// checkPackageSums reads every file dpkg installed for pkg through f and
// compares it with dpkg's md5sums.
func checkPackageSums(t *testing.T, f diskimage.Files, pkg string) {
	t.Helper()
	sums, err := f.ReadFile("/var/lib/dpkg/info/" + pkg + ".md5sums")
	if err != nil {
		t.Fatal(err)
	}
	n, size := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("%s.md5sums: %q", pkg, line)
		}
		if dpkgExcluded("/" + name) {
			continue
		}
		data, err := f.ReadFile("/" + name)
		if err != nil {
			t.Errorf("reading /%s: %v", name, err)
			continue
		}
		if got := fmt.Sprintf("%x", md5.Sum(data)); got != want {
			t.Errorf("/%s: md5 %s, dpkg says %s", name, got, want)
		}
		n, size = n+1, size+len(data)
	}
	if n < 50 {
		t.Errorf("%s: only %d files checked", pkg, n)
	}
	t.Logf("%s: %d files, %d bytes read byte-exact", pkg, n, size)
}

// dpkgExcluded reports whether the recipe's dpkg path filters keep p out
// of the image: the last matching filter decides, and * matches any
// characters, '/' too (dpkg's fnmatch without FNM_PATHNAME).
func dpkgExcluded(p string) bool {
	excluded := false
	for _, opt := range dpkgExcludes {
		kind, pattern, _ := strings.Cut(opt, "=")
		re := "^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$"
		if regexp.MustCompile(re).MatchString(p) {
			excluded = kind == "path-exclude"
		}
	}
	return excluded
}

// checkIdentity: the stand-in's os-release, read from its root, names it
// as the distro descriptions do.
func checkIdentity(t *testing.T, img *diskimage.Image, shape string) {
	t.Helper()
	root, err := img.Root(0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := img.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	osr, err := diskimage.OSRelease(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := osr["ID"] + "/" + osr["VERSION_ID"]; got != ShapeDistro+"/"+shape {
		t.Errorf("os-release names %s, want %s/%s", got, ShapeDistro, shape)
	}
}

func partUUID(info *BuildInfo, n int) string {
	for _, p := range info.Partitions {
		if p.Number == n {
			return p.UUID
		}
	}
	return ""
}

// checkXFS checks label, UUID, bigtime and inobtcount of an xfs image and
// that xfs_repair finds nothing to repair.
func checkXFS(t *testing.T, img, label, uuid string, newFeatures bool) {
	t.Helper()
	out := output(t, "xfs_db", "-r", "-c", "sb 0", "-c", "print fname uuid features_incompat features_ro_compat", img)
	var incompat, rocompat uint64
	for _, line := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(line, " = ")
		switch k {
		case "fname":
			if !strings.HasPrefix(v, `"`+label+`\000`) {
				t.Errorf("xfs label %s, want %s", v, label)
			}
		case "uuid":
			if v != uuid {
				t.Errorf("xfs uuid %s, want %s (build.json)", v, uuid)
			}
		case "features_incompat":
			fmt.Sscanf(v, "0x%x", &incompat)
		case "features_ro_compat":
			fmt.Sscanf(v, "0x%x", &rocompat)
		}
	}
	const bigtime, inobtcount = 0x8, 0x8 // XFS_SB_FEAT_INCOMPAT_BIGTIME, XFS_SB_FEAT_RO_COMPAT_INOBTCNT
	if got := incompat&bigtime != 0; got != newFeatures {
		t.Errorf("xfs %s: bigtime %v, want %v (%s)", label, got, newFeatures, out)
	}
	if got := rocompat&inobtcount != 0; got != newFeatures {
		t.Errorf("xfs %s: inobtcount %v, want %v (%s)", label, got, newFeatures, out)
	}
	output(t, "xfs_repair", "-n", img)
}

func readBootFile(t *testing.T, f diskimage.Files, name string) []byte {
	t.Helper()
	data, err := f.ReadFile("/" + name)
	if err != nil {
		t.Fatalf("reading %s from the boot partition: %v", name, err)
	}
	return data
}

// cpioNames lists the files of an initrd, as `cpio -t` over each member
// would: uncompressed newc archives (early microcode, firmware) are
// walked, the compressed main archive is decompressed (gzip or zstd).
func cpioNames(t *testing.T, initrd []byte) []string {
	t.Helper()
	var names []string
	rest := initrd
	for len(rest) > 0 {
		switch {
		case rest[0] == 0: // padding between members
			rest = rest[1:]
			continue
		case bytes.HasPrefix(rest, []byte("070701")):
			n, size := cpioList(t, rest, &names)
			if n == 0 {
				t.Fatalf("empty newc member (%d bytes)", size)
			}
			rest = rest[size:]
			continue
		}
		var r io.Reader
		switch {
		case bytes.HasPrefix(rest, []byte{0x1f, 0x8b}):
			zr, err := gzip.NewReader(bytes.NewReader(rest))
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		case bytes.HasPrefix(rest, []byte{0x28, 0xb5, 0x2f, 0xfd}):
			zr, err := zstd.NewReader(bytes.NewReader(rest))
			if err != nil {
				t.Fatal(err)
			}
			defer zr.Close()
			r = zr
		default:
			t.Fatalf("initrd member at offset %d starts with %x: not newc, gzip or zstd", len(initrd)-len(rest), rest[:min(8, len(rest))])
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("decompressing the initrd: %v", err)
		}
		cpioList(t, data, &names)
		break // a compressed member runs to the end
	}
	if len(names) < 100 {
		t.Fatalf("initrd lists only %d files", len(names))
	}
	return names
}

// cpioList appends the names of the newc archive at the start of data
// and returns how many entries it had and its size up to its trailer.
func cpioList(t *testing.T, data []byte, names *[]string) (int, int) {
	t.Helper()
	cr := cpio.NewReader(bytes.NewReader(data))
	n := 0
	for {
		h, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("listing the initrd: %v", err)
		}
		*names = append(*names, h.Name)
		n++
	}
	// The reader hides the trailer's position: find it, then its padding.
	end := bytes.Index(data, []byte("TRAILER!!!"))
	if end < 0 {
		t.Fatal("newc archive without TRAILER!!!")
	}
	end += len("TRAILER!!!") + 1
	end = (end + 3) &^ 3
	return n, end
}

func hasName(names []string, part string) bool {
	for _, n := range names {
		if strings.Contains(n, part) {
			return true
		}
	}
	return false
}

// checkBLS reads the build's BLS entry back and checks it points at the
// kernel and initrd and roots by the root filesystem's UUID.
func checkBLS(t *testing.T, f diskimage.Files, info *BuildInfo, extra string) {
	t.Helper()
	data, err := f.ReadFile("/" + info.BootEntry)
	if err != nil {
		t.Fatalf("boot entry: %v", err)
	}
	e, err := diskimage.ParseBLS(info.BootEntry, data)
	if err != nil {
		t.Fatal(err)
	}
	opts := strings.Join(e.KernelOptions(), " ")
	if !strings.Contains(string(data), "linux /"+info.Kernel+"\n") || !strings.Contains(string(data), "initrd /"+info.Initrd+"\n") ||
		!strings.Contains(opts, "root=UUID="+info.RootUUID) || !strings.Contains(opts, extra) {
		t.Errorf("boot entry %s:\n%s", info.BootEntry, data)
	}
}
