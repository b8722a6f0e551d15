package main

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/distrotest/distrotest/cmd/internal/manifest"
)

func testRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials from the host
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestImagePushPullCommands(t *testing.T) {
	reg := testRegistry(t)
	img := testImage(t)
	cache := t.TempDir()

	// a containerDisk: push, pull into the cache, pull to a file
	stdout, stderr, err := run(newImagePushCommand(), "--containerdisk", img, reg+"/cd/test:1")
	if err != nil {
		t.Fatal(err)
	}
	pushed := strings.TrimSpace(stdout)
	if !strings.HasPrefix(pushed, reg+"/cd/test:1@sha256:") || !strings.Contains(stderr, "disk sha256 ") {
		t.Fatalf("push: stdout %q, stderr %q", stdout, stderr)
	}
	digest := pushed[strings.LastIndex(pushed, "@")+1:]
	stdout, stderr, err = run(newImagePullCommand(), "--cache-dir", cache, reg+"/cd/test@"+digest)
	if err != nil {
		t.Fatal(err)
	}
	disk := strings.TrimSpace(stdout)
	if !strings.HasPrefix(disk, filepath.Join(cache, "oci", "disks")) || !strings.Contains(stderr, "qcow2 disk") {
		t.Errorf("pull: stdout %q, stderr %q", stdout, stderr)
	}
	out := filepath.Join(t.TempDir(), "disk.img")
	if _, _, err := run(newImagePullCommand(), reg+"/cd/test@"+digest, "-o", out); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(img)
	b, _ := os.ReadFile(out)
	if string(a) != string(b) {
		t.Error("pulled disk differs from the pushed one")
	}

	// a prepared image: push under a tag, pull it back
	prepared := filepath.Join(t.TempDir(), "prepared")
	if _, _, err := run(newImagePatchCommand(), "--distro", "debian/13", img, "-o", prepared); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(newImagePushCommand(), prepared, reg+"/distrotest/prepared"); err == nil || !strings.Contains(err.Error(), "give REF with a tag") {
		t.Errorf("push without a tag: %v", err)
	}
	if _, _, err := run(newImagePushCommand(), prepared, reg+"/distrotest/prepared:test"); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pulled")
	stdout, _, err = run(newImagePullCommand(), "--prepared", reg+"/distrotest/prepared:test", "-o", dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(stdout) != dir {
		t.Errorf("pull --prepared printed %q", stdout)
	}
	if m, err := manifest.Load(dir); err != nil || m.KernelVersion != "6.12.48+deb13-amd64" {
		t.Errorf("pulled manifest %+v, %v", m, err)
	}
}

func TestImageRegistryFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		cmd  func() (string, string, error)
		want string
	}{
		{"push without registry", func() (string, string, error) {
			return run(newImagePrepareCommand(), "--push", "debian/13")
		}, "--push needs --registry"},
		{"push of a missing path", func() (string, string, error) {
			return run(newImagePushCommand(), "./no/such/dir", "127.0.0.1:1/x:1")
		}, "no such file"},
		{"pull with a bad reference", func() (string, string, error) {
			return run(newImagePullCommand(), "--cache-dir", t.TempDir(), "Not A Ref@@")
		}, "parsing image reference"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.cmd()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}
