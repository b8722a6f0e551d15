// Package repo holds tests of invariants of the whole repository.
package repo

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func root(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestPackageDocs checks that every Go package has a doc comment (STYLE.md:
// what it is for, what it is not for, how to run its slow tests), as
// tailscale's pkgdoc_test.go does.
func TestPackageDocs(t *testing.T) {
	top := root(t)
	dirs := map[string]bool{} // directory → has a package doc
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "vendor", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		dir := filepath.Dir(path)
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		dirs[dir] = dirs[dir] || (f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 10 {
		t.Fatalf("found only %d Go packages under %s: is the walk wrong?", len(dirs), top)
	}
	for dir, ok := range dirs {
		if !ok {
			rel, _ := filepath.Rel(top, dir)
			t.Errorf("package in %s has no doc comment (add a doc.go)", rel)
		}
	}
}
