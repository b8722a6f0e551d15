package distro

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

var (
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	// versionRE: a version number, or a lower-case name for releases that
	// are not numbered (the stand-in shapes: shape/el).
	versionRE = regexp.MustCompile(`^([0-9]+(\.[0-9]+)*|[a-z][a-z0-9]*)$`)
)

// LoadDir reads every *.hcl file in dir (not recursively), in name order.
// Problems in the descriptions are returned as a *DiagnosticsError; other
// errors (an unreadable directory) as plain errors.
func LoadDir(dir string) (*Catalog, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading distro descriptions: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".hcl") {
			names = append(names, filepath.Join(dir, e.Name()))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("reading distro descriptions: no *.hcl files in %s", dir)
	}
	return load(names, os.ReadFile)
}

// LoadFS is LoadDir on a file system, for descriptions embedded in a
// binary.
func LoadFS(fsys fs.FS, dir string) (*Catalog, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("reading distro descriptions: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".hcl") {
			names = append(names, path.Join(dir, e.Name()))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("reading distro descriptions: no *.hcl files in %s", dir)
	}
	return load(names, func(name string) ([]byte, error) { return fs.ReadFile(fsys, name) })
}

// LoadFiles reads the named files, in the order given.
func LoadFiles(names ...string) (*Catalog, error) {
	return load(names, os.ReadFile)
}

func load(names []string, read func(string) ([]byte, error)) (*Catalog, error) {
	parser := hclparse.NewParser()
	var diags hcl.Diagnostics
	cat := &Catalog{}
	first := map[string]hcl.Range{} // distro name → where it was defined
	for _, name := range names {
		src, err := read(name)
		if err != nil {
			return nil, fmt.Errorf("reading distro descriptions: %w", err)
		}
		f, ds := parser.ParseHCL(src, name)
		diags = append(diags, ds...)
		if ds.HasErrors() {
			continue
		}
		d, defRange, ds := decodeFile(f, name)
		diags = append(diags, ds...)
		if d == nil {
			continue
		}
		if at, dup := first[d.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate distro",
				Detail:   fmt.Sprintf("Distro %q is already described at %s; each distro family lives in one file.", d.Name, at),
				Subject:  defRange.Ptr(),
			})
			continue
		}
		first[d.Name] = defRange
		cat.Distros = append(cat.Distros, d)
	}
	if diags.HasErrors() {
		return nil, &DiagnosticsError{Diagnostics: tidy(diags, names), Files: parser.Files()}
	}
	slices.SortFunc(cat.Distros, func(a, b *Distro) int { return strings.Compare(a.Name, b.Name) })
	return cat, nil
}

// tidy drops follow-up diagnostics that only repeat an earlier problem and
// orders the rest by file (in load order) and position: gohcl decodes
// attributes in map order, and users read files top to bottom.
func tidy(diags hcl.Diagnostics, names []string) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		// With no variables or functions in scope, an unknown value only
		// comes from an expression already reported as not allowed.
		if d.Summary == "Unsuitable value type" && strings.Contains(d.Detail, "value must be known") {
			continue
		}
		out = append(out, d)
	}
	key := func(d *hcl.Diagnostic) (int, int) {
		if d.Subject == nil {
			return -1, 0
		}
		return slices.Index(names, d.Subject.Filename), d.Subject.Start.Byte
	}
	slices.SortStableFunc(out, func(a, b *hcl.Diagnostic) int {
		af, ab := key(a)
		bf, bb := key(b)
		if af != bf {
			return af - bf
		}
		return ab - bb
	})
	return out
}

// decodeFile decodes and validates one file. It returns a nil Distro when
// there are errors.
func decodeFile(f *hcl.File, name string) (*Distro, hcl.Range, hcl.Diagnostics) {
	var file fileSchema
	diags := gohcl.DecodeBody(f.Body, nil, &file)
	switch {
	case len(file.Distros) == 0 && !diags.HasErrors():
		return nil, hcl.Range{}, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing distro block",
			Detail:   `A distro description holds one distro block: distro "name" { … }.`,
			Subject:  f.Body.MissingItemRange().Ptr(),
		})
	case len(file.Distros) > 1:
		return nil, hcl.Range{}, append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Extra distro block",
			Detail: fmt.Sprintf("Each file describes one distro family; this one already describes %q at %s.",
				file.Distros[0].Name, file.Distros[0].DefRange),
			Subject: file.Distros[1].DefRange.Ptr(),
		})
	case len(file.Distros) == 0:
		return nil, hcl.Range{}, diags
	}
	b := file.Distros[0]

	// Structural phase, continued: decode every settings body, so that all
	// unknown arguments are reported at once.
	var defaults settingsBlock
	if b.Settings != nil {
		diags = append(diags, gohcl.DecodeBody(b.Settings, nil, &defaults)...)
	}
	overrides := make([]settingsBlock, len(b.Releases))
	for i, r := range b.Releases {
		if r != nil && r.Settings != nil {
			diags = append(diags, gohcl.DecodeBody(r.Settings, nil, &overrides[i])...)
		}
	}
	if diags.HasErrors() {
		return nil, hcl.Range{}, diags
	}

	// Semantic phase.
	d := &Distro{Name: b.Name, File: name}
	if !nameRE.MatchString(b.Name) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid distro name",
			Detail:   fmt.Sprintf("%q is not a valid distro name: use lower-case letters, digits and dashes, starting with a letter (it names gen/<name>.nix and Nix attributes).", b.Name),
			Subject:  b.NameRange.Ptr(),
		})
	}
	base, ds := parseSettings(&defaults)
	diags = append(diags, ds...)
	seen := map[string]*releaseBlock{}
	for i, rb := range b.Releases {
		if prev, dup := seen[rb.Version]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate release",
				Detail:   fmt.Sprintf("Release %q of distro %q is already defined at %s.", rb.Version, b.Name, prev.DefRange),
				Subject:  rb.DefRange.Ptr(),
			})
			continue
		}
		seen[rb.Version] = rb
		r, ds := decodeRelease(b.Name, rb, base, &overrides[i])
		diags = append(diags, ds...)
		if r != nil {
			d.Releases = append(d.Releases, r)
		}
	}
	if len(b.Releases) == 0 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No releases",
			Detail:   fmt.Sprintf("Distro %q has no release blocks: add at least one, like release \"1\" { image \"x86_64-linux\" { … } }.", b.Name),
			Subject:  b.DefRange.Ptr(),
		})
	}
	if diags.HasErrors() {
		return nil, hcl.Range{}, diags
	}
	slices.SortFunc(d.Releases, func(a, b *Release) int { return CompareVersions(a.Version, b.Version) })
	return d, b.DefRange, diags
}

func decodeRelease(distro string, rb *releaseBlock, base settings, over *settingsBlock) (*Release, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	if !versionRE.MatchString(rb.Version) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid release version",
			Detail:   fmt.Sprintf("%q is not a release version: use the distro's version number, like \"13\" or \"24.04\" (a codename goes into codename), or a lower-case word for an unnumbered release.", rb.Version),
			Subject:  rb.VersionRange.Ptr(),
		})
	}
	if rb.Codename != "" && !nameRE.MatchString(rb.Codename) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid codename",
			Detail:   fmt.Sprintf("%q is not a codename: use lower-case letters, digits and dashes, like \"trixie\".", rb.Codename),
			Subject:  rb.CodenameRange.Ptr(),
		})
	}
	s, ds := parseSettings(over)
	diags = append(diags, ds...)
	s = base.override(s)

	r := &Release{
		Distro:              distro,
		Version:             rb.Version,
		Codename:            rb.Codename,
		Kernel:              s.kernel,
		Initrd:              s.initrd,
		RootPartition:       s.rootPartition,
		RootSubvolume:       s.rootSubvolume,
		GuestFamily:         s.guestFamily,
		SSHUnit:             s.sshUnit,
		SELinux:             s.selinux != nil && *s.selinux,
		VirtioConsoleModule: s.virtioConsole != nil && *s.virtioConsole,
		NotOffered:          s.notOffered,
	}
	missing := func(attr, example string) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing " + attr,
			Detail: fmt.Sprintf("Release %q of distro %q has no %s: set %s = %s in the release block, or in the distro block for all releases.",
				rb.Version, distro, attr, attr, example),
			Subject: rb.DefRange.Ptr(),
		})
	}
	for _, m := range []struct{ attr, example string }{
		{"strategy", quoteList(Strategies)},
		{"rootfs", quoteList(Filesystems)},
		{"boot_filesystem", quoteList(BootFilesystems)},
		{"initrd_generator", quoteList(InitrdGenerators)},
		{"network", quoteList(Networks)},
		{"guest_family", quoteList(guestFamilies())},
		{"ssh_unit", `"ssh.service"`},
		{"share_transport", quoteList(ShareTransports)},
		{"kernel", `"boot/vmlinuz-*"`},
		{"initrd", `"boot/initrd.img-*"`},
	} {
		if !s.set[m.attr] {
			missing(m.attr, m.example)
		}
	}
	if s.strategy != nil {
		r.Strategy = *s.strategy
	}
	if s.rootfs != nil {
		r.Rootfs = *s.rootfs
	}
	if s.bootFS != nil {
		r.BootFilesystem = *s.bootFS
	}
	if s.generator != nil {
		r.InitrdGenerator = *s.generator
	}
	if s.network != nil {
		r.Network = *s.network
	}
	if s.share != nil {
		r.ShareTransport = *s.share
	}
	switch {
	case s.rootDevice != nil:
		r.RootDevice = *s.rootDevice
	case r.Strategy == StrategyDisk:
		r.RootDevice = RootByDevice // today's disk images boot without relying on the initrd's udev
	default:
		r.RootDevice = RootByUUID
	}
	// Cross-field rules, reported at the attribute that breaks them.
	at := func(attr string) *hcl.Range {
		if rg, ok := s.ranges[attr]; ok {
			return rg.Ptr()
		}
		return rb.DefRange.Ptr()
	}
	if r.Strategy == StrategyDisk && r.Rootfs != "" && r.Rootfs != Ext4 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Strategy does not fit the root filesystem",
			Detail:   fmt.Sprintf("Release %q has a %s root, but the disk strategy writes ext4 only: use strategy = \"initrd\" (the disk is not written at all).", rb.Version, r.Rootfs),
			Subject:  at("strategy"),
		})
	}
	if r.RootSubvolume != "" && r.Rootfs != "" && r.Rootfs != Btrfs {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Subvolume on a non-btrfs root",
			Detail:   fmt.Sprintf("Release %q sets root_subvolume but its root is %s; only btrfs has subvolumes.", rb.Version, r.Rootfs),
			Subject:  at("root_subvolume"),
		})
	}
	if rb.Build != nil {
		if !nameRE.MatchString(rb.Build.Suite) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid build suite",
				Detail:   fmt.Sprintf("%q is not a suite name: use the distro's suite, like \"trixie\".", rb.Build.Suite),
				Subject:  rb.Build.SuiteRange.Ptr(),
			})
		}
		r.Build = &Build{Suite: rb.Build.Suite}
	}

	seen := map[string]*imageBlock{}
	for _, ib := range rb.Images {
		if prev, dup := seen[ib.System]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate image",
				Detail:   fmt.Sprintf("Release %q already has an image for %q at %s.", rb.Version, ib.System, prev.DefRange),
				Subject:  ib.DefRange.Ptr(),
			})
			continue
		}
		seen[ib.System] = ib
		img, ds := decodeImage(ib)
		diags = append(diags, ds...)
		if img != nil {
			r.Images = append(r.Images, img)
		}
	}
	if len(rb.Images) == 0 && rb.Build == nil {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Nothing to boot",
			Detail:   fmt.Sprintf("Release %q has no image block and no build block: give an upstream image, a way to build one, or both.", rb.Version),
			Subject:  rb.DefRange.Ptr(),
		})
	}
	slices.SortFunc(r.Images, func(a, b *Image) int { return strings.Compare(a.System, b.System) })
	if diags.HasErrors() {
		return nil, diags
	}
	return r, diags
}

// ociRef is an OCI image reference with an explicit registry (a host with
// a dot or a port, or localhost), pinned by a sha256 digest.
var ociRef = regexp.MustCompile(`^(localhost|[a-z0-9.-]+\.[a-z0-9.-]+|[a-z0-9.-]+:[0-9]+|\[[0-9a-f:]+\]:[0-9]+)(:[0-9]+)?(/[a-z0-9]+([._-]+[a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$`)

func decodeImage(ib *imageBlock) (*Image, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	if !slices.Contains(Systems, ib.System) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown system",
			Detail:   fmt.Sprintf("%q is not a supported Nix system: want %s.", ib.System, quoteList(Systems)),
			Subject:  ib.SystemRange.Ptr(),
		})
	}
	img := &Image{System: ib.System}
	switch {
	case ib.URL == nil && ib.OCI == nil:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing image source",
			Detail:   fmt.Sprintf("Image %q needs url = \"https://…\" or oci = \"registry/repository@sha256:…\" (a KubeVirt containerDisk).", ib.System),
			Subject:  ib.DefRange.Ptr(),
		})
	case ib.URL != nil && ib.OCI != nil:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Conflicting image sources",
			Detail:   fmt.Sprintf("Image %q sets both url (at %s) and oci: keep one.", ib.System, ib.URLRange),
			Subject:  ib.OCIRange.Ptr(),
		})
	case ib.OCI != nil:
		if !ociRef.MatchString(*ib.OCI) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid OCI reference",
				Detail:   fmt.Sprintf("%q is not a digest-pinned reference with an explicit registry: want host[:port]/repository[:tag]@sha256:<64 hex digits> (a tag alone can move; a digest never does).", *ib.OCI),
				Subject:  ib.OCIRange.Ptr(),
			})
		}
		img.OCI = *ib.OCI
	default:
		if u, err := url.Parse(*ib.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid image URL",
				Detail:   fmt.Sprintf("%q is not an http(s) URL.", *ib.URL),
				Subject:  ib.URLRange.Ptr(),
			})
		}
		img.URL = *ib.URL
	}
	switch {
	case ib.SHA256 == nil && ib.SHA512 == nil:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing image hash",
			Detail:   fmt.Sprintf("Image %q needs sha256 = \"…\" or sha512 = \"…\" (hex, Nix base-32 or SRI).", ib.System),
			Subject:  ib.DefRange.Ptr(),
		})
	case ib.SHA256 != nil && ib.SHA512 != nil:
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Conflicting image hashes",
			Detail:   fmt.Sprintf("Image %q sets both sha256 (at %s) and sha512: keep one.", ib.System, ib.SHA256Range),
			Subject:  ib.SHA512Range.Ptr(),
		})
	default:
		algorithm, value, rng := "sha256", ib.SHA256, ib.SHA256Range
		if ib.SHA512 != nil {
			algorithm, value, rng = "sha512", ib.SHA512, ib.SHA512Range
		}
		h, err := ParseHash(algorithm, *value)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Malformed hash",
				Detail:   upperFirst(err.Error()) + ".",
				Subject:  rng.Ptr(),
			})
		}
		img.Hash = h
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return img, diags
}

// settings are the validated values of one settingsBlock; nil or empty
// means not set at that level, or set to an invalid value (already
// reported). set records which attributes were given at all, so that an
// invalid value is not reported a second time as missing; ranges where.
type settings struct {
	set           map[string]bool
	ranges        map[string]hcl.Range
	strategy      *Strategy
	rootfs        *Filesystem
	bootFS        *Filesystem
	generator     *InitrdGenerator
	network       *Network
	share         *ShareTransport
	rootDevice    *RootDevice
	kernel        string
	initrd        string
	rootPartition int
	rootSubvolume string
	guestFamily   string
	sshUnit       string
	notOffered    string
	selinux       *bool
	virtioConsole *bool
}

// override returns s with every setting that o sets replaced.
func (s settings) override(o settings) settings {
	set, ranges := map[string]bool{}, map[string]hcl.Range{}
	for _, m := range []settings{s, o} {
		for k := range m.set {
			set[k] = true
		}
		for k, v := range m.ranges {
			ranges[k] = v
		}
	}
	s.set, s.ranges = set, ranges
	if o.strategy != nil {
		s.strategy = o.strategy
	}
	if o.rootfs != nil {
		s.rootfs = o.rootfs
	}
	if o.bootFS != nil {
		s.bootFS = o.bootFS
	}
	if o.generator != nil {
		s.generator = o.generator
	}
	if o.network != nil {
		s.network = o.network
	}
	if o.share != nil {
		s.share = o.share
	}
	if o.rootDevice != nil {
		s.rootDevice = o.rootDevice
	}
	if o.selinux != nil {
		s.selinux = o.selinux
	}
	if o.virtioConsole != nil {
		s.virtioConsole = o.virtioConsole
	}
	for _, f := range []struct{ dst, src *string }{
		{&s.kernel, &o.kernel}, {&s.initrd, &o.initrd}, {&s.rootSubvolume, &o.rootSubvolume},
		{&s.guestFamily, &o.guestFamily}, {&s.sshUnit, &o.sshUnit}, {&s.notOffered, &o.notOffered},
	} {
		if *f.src != "" {
			*f.dst = *f.src
		}
	}
	if o.rootPartition != 0 {
		s.rootPartition = o.rootPartition
	}
	return s
}

var (
	unitRE      = regexp.MustCompile(`^[A-Za-z0-9@._-]+\.service$`)
	subvolumeRE = regexp.MustCompile(`^[A-Za-z0-9@._/-]+$`)
)

func parseSettings(b *settingsBlock) (settings, hcl.Diagnostics) {
	s := settings{set: map[string]bool{}, ranges: map[string]hcl.Range{}}
	var diags hcl.Diagnostics
	for _, a := range []struct {
		attr string
		set  bool
		rng  hcl.Range
	}{
		{"strategy", b.Strategy != nil, b.StrategyRange}, {"rootfs", b.Rootfs != nil, b.RootfsRange},
		{"network", b.Network != nil, b.NetworkRange}, {"kernel", b.Kernel != nil, b.KernelRange},
		{"initrd", b.Initrd != nil, b.InitrdRange}, {"boot_filesystem", b.BootFilesystem != nil, b.BootFilesystemRange},
		{"initrd_generator", b.InitrdGenerator != nil, b.InitrdGeneratorRange},
		{"guest_family", b.GuestFamily != nil, b.GuestFamilyRange}, {"ssh_unit", b.SSHUnit != nil, b.SSHUnitRange},
		{"share_transport", b.ShareTransport != nil, b.ShareTransportRange},
		{"root_subvolume", b.RootSubvolume != nil, b.RootSubvolumeRange}, {"root_device", b.RootDevice != nil, b.RootDeviceRange},
	} {
		if a.set {
			s.set[a.attr] = true
			s.ranges[a.attr] = a.rng
		}
	}
	s.strategy = parseEnum(&diags, "strategy", b.Strategy, b.StrategyRange, Strategies)
	s.rootfs = parseEnum(&diags, "rootfs", b.Rootfs, b.RootfsRange, Filesystems)
	s.bootFS = parseEnum(&diags, "boot_filesystem", b.BootFilesystem, b.BootFilesystemRange, BootFilesystems)
	s.generator = parseEnum(&diags, "initrd_generator", b.InitrdGenerator, b.InitrdGeneratorRange, InitrdGenerators)
	s.network = parseEnum(&diags, "network", b.Network, b.NetworkRange, Networks)
	s.share = parseEnum(&diags, "share_transport", b.ShareTransport, b.ShareTransportRange, ShareTransports)
	s.rootDevice = parseEnum(&diags, "root_device", b.RootDevice, b.RootDeviceRange, RootDevices)
	if g := parseEnum(&diags, "guest_family", b.GuestFamily, b.GuestFamilyRange, guestFamilies()); g != nil {
		s.guestFamily = *g
	}
	s.kernel = parseGlob(&diags, "kernel", b.Kernel, b.KernelRange)
	s.initrd = parseGlob(&diags, "initrd", b.Initrd, b.InitrdRange)
	s.selinux, s.virtioConsole = b.SELinux, b.VirtioConsoleModule
	if b.SSHUnit != nil {
		if !unitRE.MatchString(*b.SSHUnit) {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid ssh_unit",
				Detail:   fmt.Sprintf("%q is not a systemd service name: want something like \"ssh.service\" or \"sshd.service\".", *b.SSHUnit),
				Subject:  b.SSHUnitRange.Ptr(),
			})
		} else {
			s.sshUnit = *b.SSHUnit
		}
	}
	if b.RootSubvolume != nil {
		v := *b.RootSubvolume
		if !subvolumeRE.MatchString(v) || strings.HasPrefix(v, "/") || strings.Contains(v, "..") {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid root_subvolume",
				Detail:   fmt.Sprintf("%q is not a btrfs subvolume path: want a relative name like \"root\" (it goes into rootflags=subvol=…).", v),
				Subject:  b.RootSubvolumeRange.Ptr(),
			})
		} else {
			s.rootSubvolume = v
		}
	}
	if b.NotOffered != nil {
		if strings.TrimSpace(*b.NotOffered) == "" {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Empty not_offered",
				Detail:   "not_offered says why lib does not offer the release; an empty reason says nothing: remove it or give the reason.",
				Subject:  b.NotOfferedRange.Ptr(),
			})
		} else {
			s.notOffered = *b.NotOffered
		}
	}
	if b.RootPartition != nil {
		if n := *b.RootPartition; n < 1 || n > 128 {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid root partition",
				Detail:   fmt.Sprintf("Partition %d does not exist: partitions are numbered from 1 to 128.", n),
				Subject:  b.RootPartitionRange.Ptr(),
			})
		} else {
			s.rootPartition = n
		}
	}
	return s, diags
}

// guestFamilies are the families package guest has assets for.
func guestFamilies() []string { return guest.FamilyNames() }

// parseEnum checks an optional attribute against its valid values.
func parseEnum[T ~string](diags *hcl.Diagnostics, attr string, value *string, rng hcl.Range, valid []T) *T {
	if value == nil {
		return nil
	}
	v := T(*value)
	if !slices.Contains(valid, v) {
		*diags = append(*diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Unknown " + attr,
			Detail:   fmt.Sprintf("%q is not a valid %s: want %s.", *value, attr, quoteList(valid)),
			Subject:  rng.Ptr(),
		})
		return nil
	}
	return &v
}

// parseGlob checks an optional path glob relative to the guest's root.
func parseGlob(diags *hcl.Diagnostics, attr string, value *string, rng hcl.Range) string {
	if value == nil {
		return ""
	}
	v := *value
	var problem string
	switch {
	case v == "":
		problem = "it is empty"
	case strings.HasPrefix(v, "/"):
		problem = "it must be relative to the guest's root directory, like \"boot/vmlinuz-*\""
	case path.Clean(v) != v || strings.HasPrefix(v, "../"):
		problem = "it must be a clean path inside the guest's root directory"
	default:
		if _, err := path.Match(v, ""); err != nil {
			problem = "it is not a valid glob: " + err.Error()
		}
	}
	if problem != "" {
		*diags = append(*diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid " + attr + " path",
			Detail:   fmt.Sprintf("%q cannot be used as %s: %s.", v, attr, problem),
			Subject:  rng.Ptr(),
		})
		return ""
	}
	return v
}

// quoteList renders `"a", "b" or "c"`.
func quoteList[T ~string](values []T) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", string(v))
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
