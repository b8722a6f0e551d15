package distro

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/hashicorp/hcl/v2"
)

// Spec is every fact about a release that preparing its image depends
// on: the one route for distro facts from the descriptions to the
// patcher. nixgen writes it into gen/<distro>.nix per release (as JSON,
// the string lib/images.nix hands to `image patch --spec`), and
// `image prepare` derives it from the same Release, so a prepared image
// depends on its own release's facts only, and its cache key (Hash)
// covers all of them.
type Spec struct {
	Distro              string          `json:"distro"`
	Release             string          `json:"release"`
	Strategy            Strategy        `json:"strategy"`
	Rootfs              Filesystem      `json:"rootfs"`
	RootPartition       int             `json:"root_partition,omitempty"` // 0: found by type and filesystem
	RootDevice          RootDevice      `json:"root_device"`
	RootSubvolume       string          `json:"root_subvolume,omitempty"`
	Kernel              string          `json:"kernel"`
	Initrd              string          `json:"initrd"`
	BootFilesystem      Filesystem      `json:"boot_filesystem"`
	InitrdGenerator     InitrdGenerator `json:"initrd_generator"`
	Network             Network         `json:"network"`
	GuestFamily         string          `json:"guest_family"`
	SSHUnit             string          `json:"ssh_unit"`
	SELinux             bool            `json:"selinux"`
	VirtioConsoleModule bool            `json:"virtio_console_module"`
	ShareTransport      ShareTransport  `json:"share_transport"`
}

// Spec returns the release's facts for the patcher.
func (r *Release) Spec() Spec {
	return Spec{
		Distro: r.Distro, Release: r.Version,
		Strategy: r.Strategy, Rootfs: r.Rootfs, RootPartition: r.RootPartition,
		RootDevice: r.RootDevice, RootSubvolume: r.RootSubvolume,
		Kernel: r.Kernel, Initrd: r.Initrd, BootFilesystem: r.BootFilesystem,
		InitrdGenerator: r.InitrdGenerator, Network: r.Network, GuestFamily: r.GuestFamily,
		SSHUnit: r.SSHUnit, SELinux: r.SELinux, VirtioConsoleModule: r.VirtioConsoleModule,
		ShareTransport: r.ShareTransport,
	}
}

// Ref is "distro/release".
func (s Spec) Ref() string { return s.Distro + "/" + s.Release }

// JSON is the spec's canonical encoding (fields in declaration order, one
// line).
func (s Spec) JSON() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // plain strings, ints and bools
	}
	return b
}

// Hash is a digest of every fact, for cache keys of prepared images.
func (s Spec) Hash() string {
	h := sha256.Sum256(s.JSON())
	return hex.EncodeToString(h[:])
}

// Validate checks what the descriptions' loader checks, for specs that
// come from a file.
func (s Spec) Validate() error {
	var errs []error
	if !nameRE.MatchString(s.Distro) || !versionRE.MatchString(s.Release) {
		errs = append(errs, fmt.Errorf("distro %q, release %q: want a name like \"debian\" and a version like \"13\"", s.Distro, s.Release))
	}
	check := func(field, value string, ok bool, valid string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s %q: want %s", field, value, valid))
		}
	}
	check("strategy", string(s.Strategy), slices.Contains(Strategies, s.Strategy), quoteList(Strategies))
	check("rootfs", string(s.Rootfs), slices.Contains(Filesystems, s.Rootfs), quoteList(Filesystems))
	check("root_device", string(s.RootDevice), slices.Contains(RootDevices, s.RootDevice), quoteList(RootDevices))
	check("boot_filesystem", string(s.BootFilesystem), slices.Contains(BootFilesystems, s.BootFilesystem), quoteList(BootFilesystems))
	check("initrd_generator", string(s.InitrdGenerator), slices.Contains(InitrdGenerators, s.InitrdGenerator), quoteList(InitrdGenerators))
	check("network", string(s.Network), slices.Contains(Networks, s.Network), quoteList(Networks))
	check("share_transport", string(s.ShareTransport), slices.Contains(ShareTransports, s.ShareTransport), quoteList(ShareTransports))
	check("guest_family", s.GuestFamily, slices.Contains(guestFamilies(), s.GuestFamily), quoteList(guestFamilies()))
	check("ssh_unit", s.SSHUnit, unitRE.MatchString(s.SSHUnit), `a service name like "ssh.service"`)
	if s.RootSubvolume != "" && !subvolumeRE.MatchString(s.RootSubvolume) {
		errs = append(errs, fmt.Errorf("root_subvolume %q is not a subvolume path", s.RootSubvolume))
	}
	if s.RootPartition < 0 || s.RootPartition > 128 {
		errs = append(errs, fmt.Errorf("root_partition %d: want 1..128, or 0 to find it", s.RootPartition))
	}
	for _, g := range []struct{ field, v string }{{"kernel", s.Kernel}, {"initrd", s.Initrd}} {
		var d hcl.Diagnostics
		if parseGlob(&d, g.field, &g.v, hcl.Range{}) == "" {
			errs = append(errs, fmt.Errorf("%s %q: want a glob relative to the guest's root, like \"boot/vmlinuz-*\"", g.field, g.v))
		}
	}
	return errors.Join(errs...)
}

// DecodeSpec reads a spec written by Spec.JSON (or by Nix's
// builtins.toJSON of the generated data); unknown fields are errors. name
// is the file, for messages.
func DecodeSpec(name string, data []byte) (Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("reading the distro spec %s: %w", name, err)
	}
	if dec.More() {
		return Spec{}, fmt.Errorf("reading the distro spec %s: more than one JSON value", name)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("distro spec %s: %w", name, err)
	}
	return s, nil
}
