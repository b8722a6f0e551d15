package jsonpos

import (
	"strings"
	"testing"
)

type inner struct {
	Name string `json:"name"`
	CPUs int    `json:"cpus"`
}

type doc struct {
	Version  int              `json:"version"`
	Machines []inner          `json:"machines"`
	Shares   map[string]inner `json:"shares"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"ok", `{"version":1,"machines":[{"name":"a","cpus":2}]}`, ""},
		{"unknown top key", "{\n  \"version\": 1,\n  \"bogus\": 2\n}", `f.json:3:3: unknown key "bogus" (known keys: version, machines, shares)`},
		{"unknown nested key", `{"machines":[{"name":"a"},{"cpu":1}]}`, `f.json:1:28: unknown key "cpu" in machines[1] (known keys: name, cpus)`},
		{"unknown key in a map value", `{"shares":{"x":{"nam":"a"}}}`, `f.json:1:17: unknown key "nam" in shares.x (known keys: name, cpus)`},
		{"type error", `{"machines":[{"cpus":"two"}]}`, `f.json:1:27: machines[].cpus: want int, not a JSON string`},
		{"syntax error", "{\"version\": 1,}", `f.json:1:15: invalid character '}'`},
		{"trailing data", "{}\n{}", `f.json:2:1: unexpected data after the JSON document`},
		{"empty", "", `f.json: empty file`},
		{"truncated", `{"version":`, `f.json: unexpected end of file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d doc
			err := Decode("f.json", []byte(tt.in), &d)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Fatalf("error %v, want it to start with %q", err, tt.want)
			}
		})
	}
}

func TestPosition(t *testing.T) {
	data := []byte("ab\ncd\n")
	for off, want := range map[int64]string{0: "1:1", 2: "1:3", 3: "2:1", 4: "2:2", 99: "3:1"} {
		if got := Position(data, off); got != want {
			t.Errorf("Position(%d) = %s, want %s", off, got, want)
		}
	}
}
