package backdoor

import (
	"bytes"
	"fmt"
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
	if diff := cmp.Diff("__dt_init ab.1 r\n", initLine("ab.1", Raw)); diff != "" {
		t.Errorf("initLine (-want +got):\n%s", diff)
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
		{"raw", "0 0 r 12 3735928559", header{enc: 'r', length: 12, crc: 3735928559}, false},
		{"raw empty", "3 0 r 0 4294967295", header{status: 3, enc: 'r', crc: 4294967295}, false},
		{"base64", "1 0 b 70000 7", header{status: 1, enc: 'b', length: 70000, crc: 7}, false},
		{"timed out", "137 1 r 5 1", header{status: 137, timedOut: true, enc: 'r', length: 5, crc: 1}, false},
		{"raw, CRC in the trailer", "0 0 r 70000 -", header{enc: 'r', length: 70000, crcLater: true}, false},
		{"base64 needs the CRC first", "0 0 b 70000 -", header{}, true},
		{"cksum failed", "0 0 e 0 0", header{enc: 'e'}, false},
		{"file system full", "0 0 f 0 0", header{enc: 'f'}, false},
		{"too few fields", "0 0 r 1", header{}, true},
		{"old format", "0 0 b -", header{}, true},
		{"bad status", "x 0 r 1 1", header{}, true},
		{"status out of range", "256 0 r 1 1", header{}, true},
		{"bad flag", "0 2 r 1 1", header{}, true},
		{"bad length", "0 0 r -1 1", header{}, true},
		{"bad encoding", "0 0 z 1 1", header{}, true},
		{"checksum too large", "0 0 r 1 4294967296", header{}, true},
		{"error with a payload", "0 0 e 5 0", header{}, true},
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

func TestParseReady(t *testing.T) {
	got, err := parseReady("536870912 5.2.37(1)-release /run/distrotest backdoor/distrotest.AbC 12")
	want := readyInfo{capacity: 536870912, bash: "5.2.37(1)-release", dir: "/run/distrotest backdoor/distrotest.AbC 12"}
	if err != nil || got != want {
		t.Errorf("parseReady = %+v, %v; want %+v", got, err, want)
	}
	for _, bad := range []string{"", "5.2.37(1)-release", "x 5.2 /tmp", "-1 5.2 /tmp"} {
		if _, err := parseReady(bad); err == nil {
			t.Errorf("parseReady(%q) accepted it", bad)
		}
	}
}

func TestCksum(t *testing.T) {
	// Values printed by GNU coreutils cksum 9.1.
	tests := []struct {
		in   string
		want uint32
	}{
		{"", 4294967295},
		{"a", 1220704766},
		{"hello\n", 3015617425},
		{"123456789", 930766865},
	}
	for _, tt := range tests {
		if got := Cksum([]byte(tt.in)); got != tt.want {
			t.Errorf("Cksum(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// TestCksumMatchesTool compares with the host's cksum(1) on sizes around the
// length encoding's byte boundaries.
func TestCksumMatchesTool(t *testing.T) {
	path, err := exec.LookPath("cksum")
	if err != nil {
		t.Skip("no cksum(1) on this host")
	}
	data := make([]byte, 70000)
	for i := range data {
		data[i] = byte(i*7 + i>>8)
	}
	for _, n := range []int{1, 7, 8, 9, 255, 256, 65535, 65536, 70000} {
		cmd := exec.Command(path)
		cmd.Stdin = bytes.NewReader(data[:n])
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%d %d\n", Cksum(data[:n]), n)
		if string(out) != want {
			t.Errorf("%d bytes: cksum(1) says %q, Cksum %q", n, out, want)
		}
	}
}

func TestParseTrailer(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		crcLater bool
		rc       int
		crc      uint32
		wantErr  bool
	}{
		{"ok", "DT a.1 end 0", false, 0, 0, false},
		{"sender failed", "DT a.1 end 127", false, 127, 0, false},
		{"with the CRC", "DT a.1 end 0 3735928559", true, 0, 3735928559, false},
		{"cksum failed", "DT a.1 end 1 ", true, 1, 0, false},
		{"CRC missing", "DT a.1 end 0", true, 0, 0, true},
		{"CRC not expected", "DT a.1 end 0 5", false, 0, 0, true},
		{"bad CRC", "DT a.1 end 0 x", true, 0, 0, true},
		{"other id", "DT a.2 end 0", false, 0, 0, true},
		{"garbage", "DT a.1 end x", false, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, crc, err := parseTrailer(tt.line, "a.1", tt.crcLater)
			if (err != nil) != tt.wantErr || rc != tt.rc || crc != tt.crc {
				t.Errorf("parseTrailer(%q, %v) = %d, %d, %v; want %d, %d, error %v", tt.line, tt.crcLater, rc, crc, err, tt.rc, tt.crc, tt.wantErr)
			}
		})
	}
}

func BenchmarkCksum(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Cksum(data)
	}
}
