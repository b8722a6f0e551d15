package distro

import "github.com/hashicorp/hcl/v2"

// The structs in this file are the HCL schema, decoded by gohcl. They mirror
// the syntax, keep source ranges for diagnostics and are never used outside
// this package: load.go converts them into the domain model.
//
//	distro "debian" {
//	  <settings>                  # defaults for every release
//	  release "13" {
//	    codename = "trixie"
//	    <settings>                # overrides
//	    build { suite = "trixie" }
//	    image "x86_64-linux" {
//	      url    = "https://…"
//	      sha256 = "…"            # or sha512
//	    }
//	  }
//	}

// fileSchema is the top level of a distros/*.hcl file.
type fileSchema struct {
	Distros []*distroBlock `hcl:"distro,block"`
}

type distroBlock struct {
	Name      string    `hcl:"name,label"`
	NameRange hcl.Range `hcl:"name,label_range"`
	DefRange  hcl.Range `hcl:",def_range"`

	Releases []*releaseBlock `hcl:"release,block"`
	// Settings holds the distro-wide defaults, decoded into settingsBlock.
	Settings hcl.Body `hcl:",remain"`
}

type releaseBlock struct {
	Version      string    `hcl:"version,label"`
	VersionRange hcl.Range `hcl:"version,label_range"`
	DefRange     hcl.Range `hcl:",def_range"`

	Codename      string    `hcl:"codename,optional"`
	CodenameRange hcl.Range `hcl:"codename,attr_value_range"`

	Build  *buildBlock   `hcl:"build,block"`
	Images []*imageBlock `hcl:"image,block"`
	// Settings holds the per-release overrides, decoded into settingsBlock.
	Settings hcl.Body `hcl:",remain"`
}

// settingsBlock is what a distro block sets for all its releases and a
// release block may override. Pointers tell "not set" from zero values.
type settingsBlock struct {
	Strategy      *string   `hcl:"strategy,optional"`
	StrategyRange hcl.Range `hcl:"strategy,attr_value_range"`

	Rootfs      *string   `hcl:"rootfs,optional"`
	RootfsRange hcl.Range `hcl:"rootfs,attr_value_range"`

	Kernel      *string   `hcl:"kernel,optional"`
	KernelRange hcl.Range `hcl:"kernel,attr_value_range"`

	Initrd      *string   `hcl:"initrd,optional"`
	InitrdRange hcl.Range `hcl:"initrd,attr_value_range"`

	RootPartition      *int      `hcl:"root_partition,optional"`
	RootPartitionRange hcl.Range `hcl:"root_partition,attr_value_range"`

	RootDevice      *string   `hcl:"root_device,optional"`
	RootDeviceRange hcl.Range `hcl:"root_device,attr_value_range"`

	RootSubvolume      *string   `hcl:"root_subvolume,optional"`
	RootSubvolumeRange hcl.Range `hcl:"root_subvolume,attr_value_range"`

	BootFilesystem      *string   `hcl:"boot_filesystem,optional"`
	BootFilesystemRange hcl.Range `hcl:"boot_filesystem,attr_value_range"`

	InitrdGenerator      *string   `hcl:"initrd_generator,optional"`
	InitrdGeneratorRange hcl.Range `hcl:"initrd_generator,attr_value_range"`

	Network      *string   `hcl:"network,optional"`
	NetworkRange hcl.Range `hcl:"network,attr_value_range"`

	GuestFamily      *string   `hcl:"guest_family,optional"`
	GuestFamilyRange hcl.Range `hcl:"guest_family,attr_value_range"`

	SSHUnit      *string   `hcl:"ssh_unit,optional"`
	SSHUnitRange hcl.Range `hcl:"ssh_unit,attr_value_range"`

	SELinux *bool `hcl:"selinux,optional"`

	VirtioConsoleModule *bool `hcl:"virtio_console_module,optional"`

	ShareTransport      *string   `hcl:"share_transport,optional"`
	ShareTransportRange hcl.Range `hcl:"share_transport,attr_value_range"`

	NotOffered      *string   `hcl:"not_offered,optional"`
	NotOfferedRange hcl.Range `hcl:"not_offered,attr_value_range"`
}

type buildBlock struct {
	DefRange   hcl.Range `hcl:",def_range"`
	Suite      string    `hcl:"suite"`
	SuiteRange hcl.Range `hcl:"suite,attr_value_range"`
}

type imageBlock struct {
	System      string    `hcl:"system,label"`
	SystemRange hcl.Range `hcl:"system,label_range"`
	DefRange    hcl.Range `hcl:",def_range"`

	URL      *string   `hcl:"url,optional"`
	URLRange hcl.Range `hcl:"url,attr_value_range"`

	// OCI is a KubeVirt containerDisk pinned by digest, instead of url.
	OCI      *string   `hcl:"oci,optional"`
	OCIRange hcl.Range `hcl:"oci,attr_value_range"`

	SHA256      *string   `hcl:"sha256,optional"`
	SHA256Range hcl.Range `hcl:"sha256,attr_value_range"`

	SHA512      *string   `hcl:"sha512,optional"`
	SHA512Range hcl.Range `hcl:"sha512,attr_value_range"`
}
