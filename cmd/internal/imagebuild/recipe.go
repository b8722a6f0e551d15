package imagebuild

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// RecipeVersion is mixed into every cache key. Bump it whenever the way an
// image is made changes (files written into the root, mkfs options, layout)
// so that stale cached images are not reused.
const RecipeVersion = 1

// DefaultMirror is the Debian mirror used when a request names none.
const DefaultMirror = "http://deb.debian.org/debian"

// diskSize is the virtual size of built images, like Debian's generic cloud
// images.
const diskSize = 3 << 30

// Request names the image to build.
type Request struct {
	Distro  string // "debian"
	Release string // "13"
	Arch    string // Nix system, "x86_64-linux"
	// Mirror is the package mirror; empty means DefaultMirror. It is part of
	// the cache key.
	Mirror string
	// ExtraPackages are installed on top of the base packages (a variant
	// of the image, e.g. nix-bin for a guest with Nix); they are part of
	// the recipe and so of the cache key.
	ExtraPackages []string
}

// String returns "distro/release (arch)", with "+pkg,..." for extra
// packages.
func (r Request) String() string {
	s := fmt.Sprintf("%s/%s (%s)", r.Distro, r.Release, r.Arch)
	if len(r.ExtraPackages) > 0 {
		s += " +" + strings.Join(r.ExtraPackages, ",")
	}
	return s
}

// debianPackage is a Debian package name (Debian policy §5.6.1).
var debianPackage = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)

// Release is one distro release this package can build.
type Release struct {
	Distro  string
	Release string
	Suite   string   // the distro's codename: "trixie"
	Arches  []string // Nix systems: "x86_64-linux"
}

// Ref returns "distro/release".
func (r Release) Ref() string { return r.Distro + "/" + r.Release }

// debianArches maps Nix systems to Debian architectures and kernel packages.
var debianArches = map[string]struct{ deb, kernel string }{
	"x86_64-linux": {"amd64", "linux-image-amd64"},
}

var releases = []Release{
	{Distro: "debian", Release: "12", Suite: "bookworm", Arches: []string{"x86_64-linux"}},
	{Distro: "debian", Release: "13", Suite: "trixie", Arches: []string{"x86_64-linux"}},
	{Distro: ShapeDistro, Release: ShapeEL, Suite: shapeSuite, Arches: []string{"x86_64-linux"}},
	{Distro: ShapeDistro, Release: ShapeFedora, Suite: shapeSuite, Arches: []string{"x86_64-linux"}},
	{Distro: ShapeDistro, Release: ShapeUbuntu, Suite: shapeSuite, Arches: []string{"x86_64-linux"}},
}

// Releases lists what Build can build, sorted by distro and release.
func Releases() []Release {
	out := make([]Release, len(releases))
	for i, r := range releases {
		r.Arches = slices.Clone(r.Arches)
		out[i] = r
	}
	return out
}

// ParseRef splits "debian/13" into a Request for arch. It does not check
// that the release is supported; Build does.
func ParseRef(ref, arch string) (Request, error) {
	distro, release, ok := strings.Cut(ref, "/")
	if !ok || distro == "" || release == "" || strings.Contains(release, "/") {
		return Request{}, fmt.Errorf("image %q: want DISTRO/RELEASE, e.g. debian/13 (supported: %s)", ref, supported())
	}
	return Request{Distro: distro, Release: release, Arch: arch}, nil
}

func supported() string {
	var refs []string
	for _, r := range releases {
		for _, a := range r.Arches {
			refs = append(refs, r.Ref()+" ("+a+")")
		}
	}
	return strings.Join(refs, ", ")
}

// basePackages are installed on top of mmdebstrap's minbase variant (which
// brings dpkg, apt and the Essential set), without recommends.
// systemd provides systemd-networkd in bookworm and trixie. fdisk (sfdisk)
// is in Debian's cloud images too (priority important): the guest grows its
// root partition with it when a test asks for a larger disk.
var basePackages = []string{
	"bash", "coreutils", "dbus", "e2fsprogs", "fdisk", "initramfs-tools",
	"iproute2", "iputils-ping", "kmod", "netcat-openbsd", "procps",
	"systemd", "systemd-sysv", "udev", "util-linux",
}

// dpkgExcludes keep documentation out of the image (copyright files stay).
var dpkgExcludes = []string{
	"path-exclude=/usr/share/man/*",
	"path-exclude=/usr/share/doc/*",
	"path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/info/*",
	"path-exclude=/usr/share/locale/*",
}

// Recipe is everything that determines a built image; its hash is the cache
// key. It is recorded in build.json.
type Recipe struct {
	RecipeVersion int      `json:"recipe_version"`
	Distro        string   `json:"distro"`
	Release       string   `json:"release"`
	Arch          string   `json:"arch"`
	Suite         string   `json:"suite"`
	DebianArch    string   `json:"debian_arch"`
	Mirror        string   `json:"mirror"`
	Variant       string   `json:"variant"`
	Packages      []string `json:"packages"`
	DpkgOptions   []string `json:"dpkg_options"`
	Hostname      string   `json:"hostname"`
	DiskSize      int64    `json:"disk_size"`
	Layout        Layout   `json:"layout"`
	// Shape is the family shape (ShapeEL...) of a stand-in image; empty
	// for a Debian image.
	Shape string `json:"shape,omitempty"`
	// CustomizeHooks are mmdebstrap --customize-hook scripts.
	CustomizeHooks []string `json:"customize_hooks,omitempty"`
	// OSRelease is the /etc/os-release a stand-in image gets in place of
	// Debian's, naming it as the distro descriptions do (ID=shape,
	// VERSION_ID=el), so an image with no distro named is identified as
	// its stand-in; empty for a Debian image.
	OSRelease string `json:"os_release,omitempty"`
}

// standInOSRelease is the os-release(5) of a stand-in image.
func standInOSRelease(rel *Release) string {
	return fmt.Sprintf("PRETTY_NAME=\"distrotest stand-in %s (Debian %s userland)\"\nNAME=\"distrotest stand-in\"\nID=%s\nID_LIKE=debian\nVERSION_ID=%s\nVERSION=%q\n",
		rel.Ref(), rel.Suite, rel.Distro, rel.Release, rel.Release)
}

// recipeFor validates req and returns its recipe.
func recipeFor(req Request) (Recipe, error) {
	var rel *Release
	for i := range releases {
		if releases[i].Distro == req.Distro && releases[i].Release == req.Release {
			rel = &releases[i]
		}
	}
	if rel == nil {
		return Recipe{}, fmt.Errorf("building %s/%s: not supported (supported: %s)", req.Distro, req.Release, supported())
	}
	if !slices.Contains(rel.Arches, req.Arch) {
		return Recipe{}, fmt.Errorf("building %s for %q: architecture not supported (supported: %s)", rel.Ref(), req.Arch, strings.Join(rel.Arches, ", "))
	}
	arch := debianArches[req.Arch]
	mirror := req.Mirror
	if mirror == "" {
		mirror = DefaultMirror
	}
	if !strings.HasPrefix(mirror, "http://") && !strings.HasPrefix(mirror, "https://") && !strings.HasPrefix(mirror, "file://") {
		return Recipe{}, fmt.Errorf("building %s: mirror %q: want an http://, https:// or file:// URL", rel.Ref(), mirror)
	}
	mirror = strings.TrimRight(mirror, "/")
	var shape shapeSpec
	if rel.Distro == ShapeDistro {
		shape, _ = shapeFor(rel.Release)
	}
	var layout Layout
	var err error
	if shape.name != "" {
		layout, err = shapeLayout(diskSize, shape.parts)
	} else {
		layout, err = NewLayout(diskSize)
	}
	if err != nil {
		return Recipe{}, fmt.Errorf("building %s: %w", rel.Ref(), err)
	}
	pkgs := append([]string{arch.kernel}, basePackages...)
	pkgs = slices.DeleteFunc(pkgs, func(p string) bool { return slices.Contains(shape.drop, p) })
	pkgs = append(pkgs, shape.packages...)
	for _, p := range req.ExtraPackages {
		if !debianPackage.MatchString(p) {
			return Recipe{}, fmt.Errorf("building %s: extra package %q is not a Debian package name", rel.Ref(), p)
		}
		pkgs = append(pkgs, p)
	}
	slices.Sort(pkgs)
	hostname, osRelease := rel.Distro, ""
	if shape.name != "" {
		hostname, osRelease = rel.Distro+"-"+shape.name, standInOSRelease(rel)
	}
	return Recipe{
		Shape:          shape.name,
		CustomizeHooks: slices.Clone(shape.hooks),
		RecipeVersion:  RecipeVersion,
		Distro:         rel.Distro,
		Release:        rel.Release,
		Arch:           req.Arch,
		Suite:          rel.Suite,
		DebianArch:     arch.deb,
		Mirror:         mirror,
		Variant:        "minbase",
		Packages:       slices.Compact(pkgs),
		DpkgOptions:    slices.Clone(dpkgExcludes),
		Hostname:       hostname,
		DiskSize:       diskSize,
		Layout:         layout,
		OSRelease:      osRelease,
	}, nil
}

// Key is the hex sha256 of the recipe's canonical JSON encoding.
func (r Recipe) Key() string {
	data, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("imagebuild: encoding recipe: %v", err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Name is the cache directory name: <distro>-<release>-<arch>-<key12>.
func (r Recipe) Name() string {
	return fmt.Sprintf("%s-%s-%s-%s", r.Distro, r.Release, r.Arch, r.Key()[:12])
}
