package imagebuild

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
	"github.com/distrotest/distrotest/cmd/internal/cache"
)

// Names inside a cache entry <cache>/images/<name>/.
const (
	DiskFile = "disk.qcow2"
	InfoFile = "build.json"
)

// Lookup returns the cached disk of req under cacheDir ("" for the default)
// and whether it exists. It builds nothing and needs no host tools; the
// error is for an unsupported request or an unusable cache directory.
func Lookup(req Request, cacheDir string) (path string, ok bool, err error) {
	recipe, err := recipeFor(req)
	if err != nil {
		return "", false, err
	}
	if cacheDir == "" {
		if cacheDir, err = cache.DefaultDir(); err != nil {
			return "", false, err
		}
	}
	dir := filepath.Join(cache.Images(cacheDir), recipe.Name())
	return filepath.Join(dir, DiskFile), complete(dir), nil
}

// RecipeKey returns the cache key of req's recipe (what the built image is
// made of) without building anything.
func RecipeKey(req Request) (string, error) {
	recipe, err := recipeFor(req)
	if err != nil {
		return "", err
	}
	return recipe.Key(), nil
}

// complete reports whether dir is a finished cache entry. Entries appear
// by rename, so both files exist or neither does, unless someone edited
// the cache by hand.
func complete(dir string) bool {
	for _, f := range []string{DiskFile, InfoFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// Export copies the disk at src to dir/disk.qcow2 atomically (a temporary
// file in dir, synced, then renamed) and returns the new path.
func Export(src, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("exporting image: %w", err)
	}
	dst := filepath.Join(dir, DiskFile)
	in, err := os.Open(src)
	if err != nil {
		return "", fmt.Errorf("exporting image: %w", err)
	}
	defer in.Close()
	err = atomicfile.WriteFrom(dst, in, 0o644)
	if err != nil {
		return "", fmt.Errorf("exporting image to %s: %w", dst, err)
	}
	return dst, nil
}

// BuildInfo is the content of build.json: what went into a built image.
type BuildInfo struct {
	Version        int               `json:"version"`
	Key            string            `json:"key"`
	Recipe         Recipe            `json:"recipe"`
	Disk           string            `json:"disk"`
	DiskFormat     string            `json:"disk_format"`
	RootDevice     string            `json:"root_device"`
	RootUUID       string            `json:"root_uuid"`
	Filesystem     string            `json:"filesystem"`
	Bootloader     string            `json:"bootloader"` // "none": direct kernel boot only
	Kernel         string            `json:"kernel"`     // path inside the root filesystem
	Initrd         string            `json:"initrd"`
	KernelVersion  string            `json:"kernel_version"`
	SystemdVersion int               `json:"systemd_version"`
	Tools          map[string]string `json:"tools"`
	BuiltAt        time.Time         `json:"built_at"`
	BuildSeconds   float64           `json:"build_seconds"`
	Packages       map[string]string `json:"packages"`

	// Set for shape images (Recipe.Shape) only.
	Shape string `json:"shape,omitempty"`
	// BootPartition is the number of the partition mounted at /boot;
	// Kernel and Initrd are then paths in that filesystem.
	BootPartition int             `json:"boot_partition,omitempty"`
	RootSubvolume string          `json:"root_subvolume,omitempty"`
	KernelArgs    string          `json:"kernel_args,omitempty"` // root=..., as in the boot entry
	BootEntry     string          `json:"boot_entry,omitempty"`  // BLS entry, a path in the /boot filesystem
	Partitions    []PartitionInfo `json:"partitions,omitempty"`
}

// LoadInfo reads build.json from a cache entry directory.
func LoadInfo(dir string) (*BuildInfo, error) {
	data, err := os.ReadFile(filepath.Join(dir, InfoFile))
	if err != nil {
		return nil, fmt.Errorf("reading build info: %w", err)
	}
	var info BuildInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return nil, fmt.Errorf("reading build info %s: %w", filepath.Join(dir, InfoFile), err)
	}
	return &info, nil
}

func writeInfo(dir string, info *BuildInfo) error {
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return writeSynced(filepath.Join(dir, InfoFile), append(data, '\n'))
}

func writeSynced(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
