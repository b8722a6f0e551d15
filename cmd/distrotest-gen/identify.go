package main

import (
	"fmt"
	"strings"

	"github.com/distrotest/distrotest/cmd/internal/diskimage"
	"github.com/distrotest/distrotest/cmd/internal/distro"
)

// osReleaseOf reads the os-release(5) variables of the root of the disk
// image at path (a filesystem in diskimage.Readers).
func osReleaseOf(path string) (map[string]string, error) {
	img, err := diskimage.Open(path)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	root, err := img.Root(0)
	if err != nil {
		return nil, err
	}
	fsys, err := img.Files(root)
	if err != nil {
		return nil, fmt.Errorf("the root filesystem (partition %d) is %s, from which distrotest cannot read /etc/os-release: it reads %s: %w",
			root.Number, root.FilesystemName(), strings.Join(diskimage.Readers, ", "), err)
	}
	return diskimage.OSRelease(fsys)
}

// identifyImage names the distro release of the disk image at path from
// the os-release(5) of its root filesystem (ID/VERSION_ID, e.g.
// debian/13), as the distro descriptions know it. The image is only read.
func identifyImage(cat *distro.Catalog, path string) (*distro.Release, error) {
	fail := func(err error) (*distro.Release, error) {
		return nil, fmt.Errorf("identifying the distro of %s: %w; name it instead: --distro DISTRO/RELEASE (in Nix, vmTest's distro = \"DISTRO/RELEASE\")", path, err)
	}
	osr, err := osReleaseOf(path)
	if err != nil {
		return fail(err)
	}
	id, version := osr["ID"], osr["VERSION_ID"]
	if id == "" || version == "" {
		return fail(fmt.Errorf("os-release has ID=%q VERSION_ID=%q: both are needed", id, version))
	}
	rel, err := cat.Lookup(id + "/" + version)
	if err != nil {
		return fail(fmt.Errorf("os-release says %q (ID=%s VERSION_ID=%s), which no distro description has: %w", osr["PRETTY_NAME"], id, version, err))
	}
	return rel, nil
}
