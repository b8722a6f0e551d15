package term

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestNotTerminals(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, w := range map[string]interface{ Write([]byte) (int, error) }{"buffer": &bytes.Buffer{}, "file": f} {
		if IsTerminal(w) || Color(w) || Progress(w) {
			t.Errorf("%s: IsTerminal=%v Color=%v Progress=%v, want all false", name, IsTerminal(w), Color(w), Progress(w))
		}
	}
}

func TestCI(t *testing.T) {
	t.Setenv("CI", "true")
	if !CI() {
		t.Error("CI() false with CI=true")
	}
	t.Setenv("CI", "")
	if CI() {
		t.Error("CI() true with CI empty")
	}
}
