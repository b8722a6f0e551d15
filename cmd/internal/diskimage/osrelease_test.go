package diskimage

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/cmd/internal/diskimage/imagetest"
)

func TestParseOSRelease(t *testing.T) {
	data := `# comment
PRETTY_NAME="Debian GNU/Linux 13 (trixie)"
NAME="Debian GNU/Linux"
VERSION_ID="13"
ID=debian
ID_LIKE='rhel fedora'
QUOTED="say \"hi\" for \$5"
  bad line
=novar
HOME_URL="https://www.debian.org/"
`
	want := map[string]string{
		"PRETTY_NAME": "Debian GNU/Linux 13 (trixie)", "NAME": "Debian GNU/Linux", "VERSION_ID": "13",
		"ID": "debian", "ID_LIKE": "rhel fedora", "QUOTED": `say "hi" for $5`, "HOME_URL": "https://www.debian.org/",
	}
	if d := cmp.Diff(want, ParseOSRelease([]byte(data))); d != "" {
		t.Errorf("ParseOSRelease (-want +got):\n%s", d)
	}
}

func TestOSRelease(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		wantID string
	}{
		{"etc", map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"13\"\n"}, "debian"},
		{"etc links to usr/lib (Debian)", map[string]string{"etc/os-release": "->../usr/lib/os-release", "usr/lib/os-release": "ID=ubuntu\nVERSION_ID=\"24.04\"\n"}, "ubuntu"},
		{"usr/lib only", map[string]string{"usr/lib/os-release": "ID=fedora\nVERSION_ID=41\n"}, "fedora"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, fsys := ext4Of(t, imagetest.Tree(t, tt.files))
			got, err := fsys.OSRelease()
			if err != nil {
				t.Fatal(err)
			}
			if got["ID"] != tt.wantID {
				t.Errorf("ID = %q, want %q (%v)", got["ID"], tt.wantID, got)
			}
		})
	}
	_, fsys := ext4Of(t, imagetest.Tree(t, map[string]string{"etc/hostname": "x"}))
	if _, err := fsys.OSRelease(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no os-release: err = %v, want fs.ErrNotExist", err)
	}
}
