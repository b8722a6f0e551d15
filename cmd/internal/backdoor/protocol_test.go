package backdoor

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "''"},
		{"plain", "echo hi", "'echo hi'"},
		{"single quote", "it's", `'it'\''s'`},
		{"only quotes", "''", `''\'''\'''`},
		{"dollar and backslash", `$HOME \n`, `'$HOME \n'`},
		{"newline", "a\nb", "'a\nb'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Quote(tt.in)); diff != "" {
				t.Errorf("Quote(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// TestQuoteRoundTrip checks with a real bash that every byte but NUL survives
// quoting.
func TestQuoteRoundTrip(t *testing.T) {
	var all strings.Builder
	for c := 1; c < 256; c++ {
		all.WriteByte(byte(c))
	}
	for _, s := range []string{"", "'", `'\''`, "a'b\"c$d`e`\\f\ng\r", all.String(), "\xff\xfe'"} {
		out, err := exec.Command("bash", "--norc", "-c", "printf %s "+Quote(s)).Output()
		if err != nil {
			t.Fatalf("bash: %v", err)
		}
		if string(out) != s {
			t.Errorf("round trip of %q gave %q", s, out)
		}
	}
}

func TestFormatTimeout(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0"},
		{-time.Second, "0"},
		{time.Microsecond, "0.001"},
		{1500 * time.Millisecond, "1.500"},
		{900 * time.Second, "900.000"},
	}
	for _, tt := range tests {
		t.Run(tt.in.String(), func(t *testing.T) {
			if got := formatTimeout(tt.in); got != tt.want {
				t.Errorf("formatTimeout(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRunLine(t *testing.T) {
	got, err := runLine("ab.1", "echo 'x'", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff("__dt_run ab.1 2.000 '"+CommandEnv+"echo '\\''x'\\'''\n", got); diff != "" {
		t.Errorf("runLine (-want +got):\n%s", diff)
	}
	if _, err := runLine("ab.1", "a\x00", 0); err == nil {
		t.Error("runLine accepted a NUL byte")
	}
}

func TestParseHeader(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    header
		wantErr bool
	}{
		{"raw", "0 0 r 12", header{length: 12}, false},
		{"raw empty", "3 0 r 0", header{status: 3}, false},
		{"base64", "1 0 b -", header{status: 1, base64: true, length: -1}, false},
		{"timed out", "137 1 r 5", header{status: 137, timedOut: true, length: 5}, false},
		{"too few fields", "0 0 r", header{}, true},
		{"bad status", "x 0 r 1", header{}, true},
		{"status out of range", "256 0 r 1", header{}, true},
		{"bad flag", "0 2 r 1", header{}, true},
		{"bad length", "0 0 r -1", header{}, true},
		{"bad encoding", "0 0 z 1", header{}, true},
		{"base64 with length", "0 0 b 5", header{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseHeader(tt.line)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseHeader(%q) error = %v, wantErr %v", tt.line, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(header{})); diff != "" {
				t.Errorf("parseHeader(%q) (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

func TestParseTrailer(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    int
		wantErr bool
	}{
		{"ok", "DT a.1 end 0", 0, false},
		{"base64 failed", "DT a.1 end 127", 127, false},
		{"other id", "DT a.2 end 0", 0, true},
		{"garbage", "DT a.1 end x", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTrailer(tt.line, "a.1")
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseTrailer(%q) = %d, %v; want %d, error %v", tt.line, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
