package initrd

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cavaliergopher/cpio"
	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/cmd/internal/guest"
	"github.com/distrotest/distrotest/internal/testenv"
)

func need(t testing.TB, tools ...string) {
	t.Helper()
	testenv.NeedTool(t, "scripts/setup.sh installs cpio, zstd, xz-utils, lz4, bzip2", tools...)
}

// mkcpio builds a newc archive of files (name → content, "d" suffix "/"
// for directories) with cpio(1), independently of the library under test.
func mkcpio(t testing.TB, files map[string]string) []byte {
	t.Helper()
	need(t, "cpio")
	dir := t.TempDir()
	var names []string
	for name, content := range files {
		p := filepath.Join(dir, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out, err := exec.Command("sh", "-c", "cd "+dir+" && find . | LC_ALL=C sort | cpio -o -H newc --quiet").Output()
	if err != nil {
		t.Fatalf("cpio -o: %v", err)
	}
	_ = names
	return out
}

func compress(t testing.TB, tool string, data []byte, args ...string) []byte {
	t.Helper()
	need(t, tool)
	cmd := exec.Command(tool, args...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

var (
	dracutFiles = map[string]string{
		"usr/lib/dracut/":         "",
		"etc/initrd-release":      "NAME=dracut\n",
		"usr/lib/systemd/systemd": "ELF",
		"etc/systemd/system/":     "",
	}
	microcode      = map[string]string{"kernel/x86/microcode/GenuineIntel.bin": "ucode"}
	initramfsOrder = "/scripts/init-bottom/udev \"$@\"\n[ -e /conf/param.conf ] && . /conf/param.conf\n"
	initramfsFiles = map[string]string{
		"scripts/init-bottom/udev":  "#!/bin/sh\n",
		"scripts/init-bottom/ORDER": initramfsOrder,
		"conf/initramfs.conf":       "MODULES=most\n",
		"init":                      "#!/bin/sh\n",
	}
)

func plan() guest.Plan { return guest.RuntimePlan(guest.Debian()) }

func TestInspect(t *testing.T) {
	tests := []struct {
		name    string
		data    func(t *testing.T) []byte
		members []string
		gen     Generator
		order   string
	}{
		{"dracut: microcode + gzip", func(t *testing.T) []byte {
			return append(mkcpio(t, microcode), compress(t, "gzip", mkcpio(t, dracutFiles), "-c")...)
		}, []string{"none", "gzip"}, Dracut, ""},
		{"dracut: zstd", func(t *testing.T) []byte { return compress(t, "zstd", mkcpio(t, dracutFiles), "-q", "-c") }, []string{"zstd"}, Dracut, ""},
		{"initramfs-tools: microcode + zstd", func(t *testing.T) []byte {
			return append(mkcpio(t, microcode), compress(t, "zstd", mkcpio(t, initramfsFiles), "-q", "-c")...)
		}, []string{"none", "zstd"}, InitramfsTools, initramfsOrder},
		{"initramfs-tools: xz", func(t *testing.T) []byte { return compress(t, "xz", mkcpio(t, initramfsFiles), "--check=crc32", "-c") }, []string{"xz"}, InitramfsTools, initramfsOrder},
		{"initramfs-tools: lz4 legacy", func(t *testing.T) []byte { return compress(t, "lz4", mkcpio(t, initramfsFiles), "-l", "-q", "-c") }, []string{"lz4"}, InitramfsTools, initramfsOrder},
		{"initramfs-tools: bzip2", func(t *testing.T) []byte { return compress(t, "bzip2", mkcpio(t, initramfsFiles), "-c") }, []string{"bzip2"}, InitramfsTools, initramfsOrder},
		{"uncompressed, unknown generator", func(t *testing.T) []byte { return mkcpio(t, microcode) }, []string{"none"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Inspect(tt.data(t))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range info.Members {
				got = append(got, m.Compression)
				if m.Files == 0 {
					t.Errorf("member at %d: no files", m.Offset)
				}
			}
			if diff := cmp.Diff(tt.members, got); diff != "" {
				t.Errorf("members (-want +got):\n%s", diff)
			}
			if info.Generator != tt.gen || string(info.Order) != tt.order {
				t.Errorf("generator %q order %q; want %q %q", info.Generator, info.Order, tt.gen, tt.order)
			}
		})
	}
}

func TestInspectErrors(t *testing.T) {
	good := mkcpio(t, microcode)
	tests := []struct {
		name, want string
		data       []byte
	}{
		{"not an initrd", `byte 0 ("\x7fELF\x02\x01\x01\x00"): not an initrd: not a cpio archive nor a compression format the kernel unpacks (gzip, zstd, xz, lzma, lz4, bzip2)`, []byte("\x7fELF\x02\x01\x01\x00rest")},
		{"garbage after an archive", "not a cpio archive nor a compression format", append(append([]byte(nil), good...), "JUNKJUNK"...)},
		{"truncated archive", "cpio archive at byte 0: truncated", good[:200]},
		{"empty", "empty: no cpio archive", make([]byte, 512)},
		{"corrupt gzip", "gzip", []byte("\x1f\x8b\x08\x00garbage-garbage")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Inspect(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// entries lists an archive with the cpio library: name → mode and data
// (link target for links).
func entries(t *testing.T, data []byte) ([]string, map[string]string) {
	t.Helper()
	r := cpio.NewReader(bytes.NewReader(data))
	var names []string
	content := map[string]string{}
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			return names, content
		}
		if err != nil {
			t.Fatalf("reading the overlay back: %v", err)
		}
		names = append(names, h.Name+" "+h.Mode.String())
		if h.Linkname != "" {
			content[h.Name] = "-> " + h.Linkname
			continue
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		content[h.Name] = string(b)
	}
}

func TestBuild(t *testing.T) {
	p := plan()
	for _, tt := range []struct {
		gen   Generator
		info  *Info
		hooks map[string]string // entry → substring of its content
	}{
		{Dracut, &Info{Generator: Dracut}, map[string]string{
			"etc/systemd/system/distrotest-install.service":                     "ExecStart=/bin/sh /distrotest/install",
			"etc/systemd/system/initrd.target.wants/distrotest-install.service": "-> /etc/systemd/system/distrotest-install.service",
		}},
		{InitramfsTools, &Info{Generator: InitramfsTools, Order: []byte(initramfsOrder)}, map[string]string{
			"scripts/init-bottom/distrotest": "/bin/sh /distrotest/install",
			"scripts/init-bottom/ORDER":      initramfsOrder + orderEntry,
		}},
	} {
		t.Run(string(tt.gen), func(t *testing.T) {
			o, err := Build(tt.gen, p, tt.info)
			if err != nil {
				t.Fatal(err)
			}
			names, content := entries(t, o.Data)
			// parents before children, every directory listed
			seen := map[string]bool{}
			for _, n := range names {
				name := strings.Fields(n)[0]
				if dir := filepath.Dir(name); dir != "." && !seen[dir] {
					t.Errorf("%s comes before its directory %s", name, dir)
				}
				seen[name] = true
			}
			for entry, want := range tt.hooks {
				if !strings.Contains(content[entry], want) {
					t.Errorf("%s = %q, want it to contain %q", entry, content[entry], want)
				}
			}
			for _, f := range p.Files {
				if got := content["distrotest/payload"+f.Path]; got != string(f.Data) {
					t.Errorf("payload %s: %d bytes, want %d", f.Path, len(got), len(f.Data))
				}
			}
			script := content[installScript]
			for _, s := range p.Symlinks {
				if !strings.Contains(script, "ln -sf '"+s.Target+"' '"+s.Path+"'") {
					t.Errorf("install script does not link %s", s.Path)
				}
			}
			if !bytes.HasSuffix(o.Data, []byte("TRAILER!!!\x00\x00\x00\x00")) && !bytes.Contains(o.Data[len(o.Data)-140:], []byte("TRAILER!!!")) {
				t.Error("overlay does not end with TRAILER!!!")
			}
			// sh -n: the script parses
			if out, err := exec.Command("sh", "-n", "-c", script).CombinedOutput(); err != nil {
				t.Errorf("sh -n install: %v\n%s", err, out)
			}
			// cpio(1) agrees with the library
			need(t, "cpio")
			cmd := exec.Command("cpio", "-t", "--quiet")
			cmd.Stdin = bytes.NewReader(o.Data)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("cpio -t: %v", err)
			}
			var plain []string
			for _, n := range names {
				plain = append(plain, strings.Fields(n)[0])
			}
			if diff := cmp.Diff(plain, strings.Fields(string(out))); diff != "" {
				t.Errorf("cpio -t (-library +cpio):\n%s", diff)
			}
			if diff := cmp.Diff(plain, o.Entries); diff != "" {
				t.Errorf("Entries (-read back +reported):\n%s", diff)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	if _, err := Build(Dracut, guest.NewPlan(), nil); err == nil || !strings.Contains(err.Error(), "is not a clean path under /run/") {
		t.Errorf("disk plan: error %v", err)
	}
	if _, err := Build(Dracut, plan(), &Info{Generator: InitramfsTools}); err == nil || err.Error() != `the initrd was built by initramfs-tools, not dracut: describe the release with initrd_generator = "initramfs-tools"` {
		t.Errorf("generator mismatch: error %v", err)
	}
	if _, err := Build("mkinitcpio", plan(), nil); err == nil || !strings.Contains(err.Error(), `initrd generator "mkinitcpio"`) {
		t.Errorf("unknown generator: error %v", err)
	}
}

// TestAppendedUnpacks concatenates a compressed original with the overlay,
// as the kernel sees it, and unpacks the whole with cpio(1) the way the
// kernel does (each member in turn, later files winning); then it runs the
// install script in a private mount namespace with a tmpfs on /run and
// checks what it left there.
func TestAppendedUnpacks(t *testing.T) {
	need(t, "cpio", "zstd", "unshare")
	orig := append(mkcpio(t, microcode), compress(t, "zstd", mkcpio(t, initramfsFiles), "-q", "-c")...)
	orig = append(orig, 0, 0, 0) // zero padding the kernel skips; and an odd length for Append to pad
	info, err := Inspect(orig)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Build(InitramfsTools, plan(), info)
	if err != nil {
		t.Fatal(err)
	}
	all := Append(orig, o)
	if at := len(all) - len(o.Data); at%4 != 0 || at < len(orig) || !bytes.Equal(all[:len(orig)], orig) {
		t.Errorf("overlay at byte %d after a %d-byte original: not 4-byte aligned or original changed", at, len(orig))
	}
	again, err := Inspect(all)
	if err != nil {
		t.Fatalf("inspecting the patched initrd: %v", err)
	}
	if n := len(again.Members); n != 2 {
		// the zstd member runs to the end; the overlay is after it
		t.Logf("patched initrd members: %+v", again.Members)
	}
	root := t.TempDir()
	cmd := exec.Command("cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cmd.Dir = root
	cmd.Stdin = bytes.NewReader(o.Data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v\n%s", err, out)
	}
	order, err := os.ReadFile(filepath.Join(root, orderFile))
	if err != nil || string(order) != initramfsOrder+orderEntry {
		t.Errorf("ORDER = %q, %v", order, err)
	}
	script := filepath.Join(root, installScript)
	// Run it with the payload where the script expects it.
	// The payload is read from the extracted tree instead of /distrotest,
	// and /dev/kmsg is left alone.
	run := exec.Command("unshare", "-rm", "sh", "-c",
		"mount -t tmpfs tmpfs /run && sed -e 's#/distrotest/payload#"+root+"/distrotest/payload#' -e 's#/dev/kmsg#/dev/null#' "+script+" | sh && find /run -printf '%y %p %l\\n' | sort")
	out, err := run.CombinedOutput()
	if err != nil {
		t.Skipf("cannot run the install script in a private mount namespace here (%v): %s", err, out)
	}
	got := string(out)
	for _, f := range plan().Files {
		if !strings.Contains(got, "f "+f.Path+" \n") {
			t.Errorf("after install, %s missing:\n%s", f.Path, got)
		}
	}
	for _, s := range plan().Symlinks {
		if !strings.Contains(got, "l "+s.Path+" "+s.Target+"\n") {
			t.Errorf("after install, link %s -> %s missing", s.Path, s.Target)
		}
	}
}
