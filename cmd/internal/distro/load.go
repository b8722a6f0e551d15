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
)

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	versionRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)*$`)
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
			Detail:   fmt.Sprintf("%q is not a release version: use the distro's version number, like \"13\" or \"24.04\"; a name goes into codename.", rb.Version),
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
		Distro:        distro,
		Version:       rb.Version,
		Codename:      rb.Codename,
		Kernel:        s.kernel,
		Initrd:        s.initrd,
		RootPartition: s.rootPartition,
		Quirks:        s.quirks,
	}
	if r.Quirks == nil {
		r.Quirks = []Quirk{}
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
		{"network", quoteList(Networks)},
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
	if s.network != nil {
		r.Network = *s.network
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
// invalid value is not reported a second time as missing.
type settings struct {
	set           map[string]bool
	strategy      *Strategy
	rootfs        *Filesystem
	network       *Network
	kernel        string
	initrd        string
	rootPartition int
	quirks        []Quirk // nil: not set
}

// override returns s with every setting that o sets replaced.
func (s settings) override(o settings) settings {
	set := map[string]bool{}
	for k := range s.set {
		set[k] = true
	}
	for k := range o.set {
		set[k] = true
	}
	s.set = set
	if o.strategy != nil {
		s.strategy = o.strategy
	}
	if o.rootfs != nil {
		s.rootfs = o.rootfs
	}
	if o.network != nil {
		s.network = o.network
	}
	if o.kernel != "" {
		s.kernel = o.kernel
	}
	if o.initrd != "" {
		s.initrd = o.initrd
	}
	if o.rootPartition != 0 {
		s.rootPartition = o.rootPartition
	}
	if o.quirks != nil {
		s.quirks = o.quirks
	}
	return s
}

func parseSettings(b *settingsBlock) (settings, hcl.Diagnostics) {
	s := settings{set: map[string]bool{}}
	var diags hcl.Diagnostics
	for attr, v := range map[string]bool{
		"strategy": b.Strategy != nil, "rootfs": b.Rootfs != nil, "network": b.Network != nil,
		"kernel": b.Kernel != nil, "initrd": b.Initrd != nil,
	} {
		if v {
			s.set[attr] = true
		}
	}
	s.strategy = parseEnum(&diags, "strategy", b.Strategy, b.StrategyRange, Strategies)
	s.rootfs = parseEnum(&diags, "rootfs", b.Rootfs, b.RootfsRange, Filesystems)
	s.network = parseEnum(&diags, "network", b.Network, b.NetworkRange, Networks)
	s.kernel = parseGlob(&diags, "kernel", b.Kernel, b.KernelRange)
	s.initrd = parseGlob(&diags, "initrd", b.Initrd, b.InitrdRange)
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
	if b.Quirks != nil {
		s.quirks = []Quirk{}
		for _, q := range *b.Quirks {
			if !slices.Contains(Quirks, Quirk(q)) {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  "Unknown quirk",
					Detail:   fmt.Sprintf("%q is not a known quirk: want %s.", q, quoteList(Quirks)),
					Subject:  b.QuirksRange.Ptr(),
				})
				continue
			}
			if !slices.Contains(s.quirks, Quirk(q)) {
				s.quirks = append(s.quirks, Quirk(q))
			}
		}
		slices.Sort(s.quirks)
	}
	return s, diags
}

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
