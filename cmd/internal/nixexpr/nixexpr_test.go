package nixexpr

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

var quoteTests = []struct {
	name, in, want string
}{
	{"empty", "", `""`},
	{"plain", "trixie", `"trixie"`},
	{"double quote", `say "hi"`, `"say \"hi\""`},
	{"backslash", `C:\dir\`, `"C:\\dir\\"`},
	{"interpolation", "${pkgs.hello}", `"\${pkgs.hello}"`},
	{"dollar alone", "cost $5", `"cost $5"`},
	{"dollar at end", "a$", `"a$"`},
	{"double dollar brace", "$${x}", `"$\${x}"`},
	{"dollar backslash", `$\`, `"$\\"`},
	{"dollar quote", `$"`, `"$\""`},
	{"indented string quotes", "a''b", `"a''b"`},
	{"indented string escapes", "''${ ''\\", `"''\${ ''\\"`},
	{"newline tab cr", "a\nb\tc\rd", `"a\nb\tc\rd"`},
	{"unicode", "Grüße, 世界 ✓", `"Grüße, 世界 ✓"`},
	{"url", "https://example.org/a?b=c&d=e#f", `"https://example.org/a?b=c&d=e#f"`},
	{"glob", "boot/vmlinuz-*", `"boot/vmlinuz-*"`},
}

func TestQuote(t *testing.T) {
	for _, tt := range quoteTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Quote(tt.in)
			if err != nil {
				t.Fatalf("Quote(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Quote(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestQuoteNUL(t *testing.T) {
	if _, err := Quote("a\x00b"); err == nil {
		t.Fatal("Quote accepted a NUL byte")
	}
}

func TestAttrName(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"identifier", "rootPartition", "rootPartition"},
		{"system", "x86_64-linux", "x86_64-linux"},
		{"underscore start", "_x", "_x"},
		{"prime", "x'", "x'"},
		{"number", "13", `"13"`},
		{"version with dot", "24.04", `"24.04"`},
		{"leading dash", "-x", `"-x"`},
		{"empty", "", `""`},
		{"space", "a b", `"a b"`},
		{"keyword if", "if", `"if"`},
		{"keyword or", "or", `"or"`},
		{"keyword inherit", "inherit", `"inherit"`},
		{"interpolation", "${x}", `"\${x}"`},
		{"quote", `a"b`, `"a\"b"`},
		{"unicode", "größe", `"größe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AttrName(tt.in)
			if err != nil {
				t.Fatalf("AttrName(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("AttrName(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"null", nil, "null\n"},
		{"true", true, "true\n"},
		{"false", false, "false\n"},
		{"int", 42, "42\n"},
		{"negative int", int64(-3), "-3\n"},
		{"string", "x", "\"x\"\n"},
		{"empty list", []any{}, "[ ]\n"},
		{"nil string list", []string(nil), "[ ]\n"},
		{"empty attrs", map[string]any{}, "{ }\n"},
		{"import", Import("./debian.nix"), "import ./debian.nix\n"},
		{
			"list",
			[]any{"a", 1, nil, true, -1, Import("../x.nix"), []string{"b"}},
			"[\n  \"a\"\n  1\n  null\n  true\n  (-1)\n  (import ../x.nix)\n  [\n    \"b\"\n  ]\n]\n",
		},
		{
			"sorted attrs with quoted names",
			map[string]any{
				"releases": map[string]any{
					"13":    map[string]any{"quirks": []string{}, "rootPartition": 1},
					"12":    map[string]any{"codename": "bookworm"},
					"24.04": map[string]any{},
				},
				"family": "debian",
			},
			`{
  family = "debian";
  releases = {
    "12" = {
      codename = "bookworm";
    };
    "13" = {
      quirks = [ ];
      rootPartition = 1;
    };
    "24.04" = { };
  };
}
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Marshal(tt.in)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("Marshal mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		wantErr string
	}{
		{"float", 1.5, "unsupported type float64"},
		{"nested unsupported", map[string]any{"a": []any{struct{}{}}}, `attribute "a": list element 0: unsupported type struct {}`},
		{"NUL in string", []string{"a\x00"}, "NUL"},
		{"NUL in name", map[string]any{"a\x00": 1}, "NUL"},
		{"absolute import", Import("/etc/x.nix"), "relative path"},
		{"import with space", Import("./a b.nix"), "relative path"},
		{"import interpolation", Import("./${x}.nix"), "relative path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Marshal(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Marshal error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestNixRoundTrip evaluates printed values with the real Nix evaluator and
// compares its JSON output with the input, which proves the escaping right
// rather than merely as intended.
func TestNixRoundTrip(t *testing.T) {
	nix, err := exec.LookPath("nix-instantiate")
	if err != nil {
		testenv.Missing(t, "nix-instantiate not on PATH (install nix-bin): cannot check escaping against Nix")
	}
	value := map[string]any{}
	for _, tt := range quoteTests {
		value[tt.name] = tt.in
		value[tt.in] = tt.name // the same strings as attribute names
	}
	value["list"] = []any{"a", -1, 2, true, nil, map[string]any{"13": "x", "x86_64-linux": "y", "or": "z"}}
	src, err := Marshal(value)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "value.nix")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nix, "--eval", "--strict", "--json", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("nix-instantiate: %v\n%s\nsource:\n%s", err, stderr.Bytes(), src)
	}
	var got any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decoding nix output %q: %v", out, err)
	}
	// JSON numbers decode as float64.
	want := map[string]any{}
	for k, v := range value {
		want[k] = v
	}
	want["list"] = []any{"a", -1.0, 2.0, true, nil, map[string]any{"13": "x", "x86_64-linux": "y", "or": "z"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Nix evaluated a different value (-want +got):\n%s\nsource:\n%s", diff, src)
	}
}
