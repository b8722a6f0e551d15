package imagebuild

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFindTools(t *testing.T) {
	tests := []struct {
		name    string
		missing []string
		wantErr string
	}{
		{name: "all present"},
		{name: "mmdebstrap missing", missing: []string{"mmdebstrap"},
			wantErr: "missing host tool mmdebstrap: install mmdebstrap (apt-get install mmdebstrap) or run make setup"},
		{name: "two missing", missing: []string{"sgdisk", "qemu-img"},
			wantErr: "missing host tools sgdisk, qemu-img: install them (apt-get install gdisk qemu-utils) or run make setup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			look := func(name string) (string, error) {
				for _, m := range tt.missing {
					if m == name {
						return "", exec.ErrNotFound
					}
				}
				return "/bin/" + name, nil
			}
			paths, err := findTools(buildTools, look)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("findTools error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(paths) != len(buildTools) || paths["mmdebstrap"] != "/bin/mmdebstrap" {
				t.Errorf("paths = %v", paths)
			}
		})
	}
}

func TestParseMountsUnder(t *testing.T) {
	mountinfo := `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw
40 22 0:5 /null /cache/images/.build-x/rootfs/dev/null rw shared:2 - devtmpfs devtmpfs rw
41 22 0:30 / /cache/images/.build-x/rootfs/proc rw - proc proc rw
42 22 0:31 / /cache/images/.build-xy rw - tmpfs tmpfs rw
43 22 0:32 / /cache/images/with\040space/a rw - tmpfs tmpfs rw
`
	tests := []struct {
		name string
		dir  string
		want []string
	}{
		{name: "mounts below", dir: "/cache/images/.build-x",
			want: []string{"/cache/images/.build-x/rootfs/dev/null", "/cache/images/.build-x/rootfs/proc"}},
		{name: "the dir itself", dir: "/cache/images/.build-xy", want: []string{"/cache/images/.build-xy"}},
		{name: "escaped space", dir: "/cache/images/with space", want: []string{"/cache/images/with space/a"}},
		{name: "none", dir: "/cache/images/other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseMountsUnder([]byte(mountinfo), tt.dir)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseMountsUnder(%q) (-want +got):\n%s", tt.dir, diff)
			}
		})
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want string
	}{
		{name: "empty", out: "", want: ""},
		{name: "short", out: "a\nb\n", want: "\n\ta\n\tb"},
		{name: "cut", out: "1\n2\n3\n4\n", want: "\n\t3\n\t4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tail([]byte(tt.out), 2); got != tt.want {
				t.Errorf("tail = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	// The child ignores nothing: SIGTERM to the group ends both.
	_, err = run(ctx, discardLogger(), command{path: sh, args: []string{"-c", "sleep 30 & sleep 30"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("run error = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %s after cancellation", d)
	}
}

func TestRunFailureShowsOutput(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	_, err = run(t.Context(), discardLogger(), command{path: sh, args: []string{"-c", "echo E: no such package >&2; exit 3"}})
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "E: no such package") {
		t.Errorf("run error = %v, want exit status and output", err)
	}
}

func TestRemoveTree(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := removeTree(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists: %v", dir, err)
	}
}
