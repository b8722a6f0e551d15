package machine

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/google/go-cmp/cmp"
)

func loadManifest(dir string) (*manifest.Manifest, error) { return manifest.Load(dir) }

// fileSpec is a file to create: a directory when its name ends in "/", a
// symbolic link when link is set.
type fileSpec struct {
	data string
	mode fs.FileMode
	link string
}

func writeFiles(t *testing.T, dir string, files map[string]fileSpec) {
	t.Helper()
	var dirs []string
	for name, f := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			dirs = append(dirs, name)
		case f.link != "":
			if err := os.Symlink(f.link, p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(f.data), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, f.mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range dirs {
		if err := os.Chmod(filepath.Join(dir, name), files[name].mode); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshot describes a tree: type, mode, content digest or link target of
// every entry, and modification times of files.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link " + target
		case info.IsDir():
			out[rel] = fmt.Sprintf("dir %o", info.Mode().Perm())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("file %o %x mtime %d", info.Mode().Perm(), sha256.Sum256(data), info.ModTime().Unix())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTarRoundTrip(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tree")
	writeFiles(t, src, map[string]fileSpec{
		"a.txt":        {data: "a\n", mode: 0o644},
		"bin/run":      {data: "#!/bin/sh\n", mode: 0o755},
		"secret":       {data: "s", mode: 0o600},
		"ro/":          {mode: 0o555},
		"ro/inside":    {data: "in a read-only dir", mode: 0o444},
		"link":         {link: "a.txt"},
		"dangling":     {link: "/nonexistent"},
		"deep/er/file": {data: "x", mode: 0o640},
	})
	// A non-root user cannot remove ro/inside while ro is read-only:
	// make it writable again before t.TempDir's cleanup removes the tree.
	t.Cleanup(func() { os.Chmod(filepath.Join(src, "ro"), 0o755) })
	var archive bytes.Buffer
	if err := writeTar(&archive, src, "copy"); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := extractTar(bytes.NewReader(archive.Bytes()), dst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dst, "copy", "ro"), 0o755) })
	if d := cmp.Diff(snapshot(t, src), snapshot(t, filepath.Join(dst, "copy"))); d != "" {
		t.Errorf("(-src +extracted):\n%s", d)
	}

	// Extracting again over the first copy replaces files and links.
	if err := os.Chmod(filepath.Join(dst, "copy", "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := extractTar(bytes.NewReader(archive.Bytes()), dst); err != nil {
		t.Fatalf("second extraction: %v", err)
	}
}

func TestWriteTarSingleFileFollowsLink(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]fileSpec{"real": {data: "content", mode: 0o640}, "alias": {link: "real"}})
	var archive bytes.Buffer
	if err := writeTar(&archive, filepath.Join(dir, "alias"), "target"); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&archive)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("%s %c %o %d %s", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Format)
	if want := "target 0 640 0 USTAR"; got != want {
		t.Errorf("header = %q, want %q", got, want)
	}
}

func TestExtractTarRejectsEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries []tar.Header
		want    string
	}{
		{name: "dotdot", entries: []tar.Header{{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, want: "leaves the target directory"},
		{name: "absolute", entries: []tar.Header{{Name: "/etc/evil", Typeflag: tar.TypeReg, Mode: 0o644}}, want: "leaves the target directory"},
		{name: "through a link", entries: []tar.Header{
			{Name: "x", Typeflag: tar.TypeSymlink, Linkname: "/tmp"},
			{Name: "x/evil", Typeflag: tar.TypeReg, Mode: 0o644},
		}, want: "escapes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			tw := tar.NewWriter(&b)
			for _, h := range tt.entries {
				h := h
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			err := extractTar(&b, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}
