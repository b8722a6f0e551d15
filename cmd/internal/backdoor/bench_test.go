package backdoor

import (
	"bufio"
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// BenchmarkRun measures a round trip through a real local bash. In the guest
// under TCG a fork+exec costs ~31 ms; compare the cases by how many external
// programs they run, not by the absolute host numbers.
func BenchmarkRun(b *testing.B) {
	small := strings.Repeat("x", 100)
	cases := []struct {
		name    string
		tr      transport
		command string
		timeout time.Duration
	}{
		{"true", pipes, "true", 0},
		{"true/pty", pty, "true", 0},
		{"true/timeout", pipes, "true", time.Minute},
		{"echo 100B/timeout", pipes, "echo " + small, time.Minute},
		{"64KiB base64/timeout", pipes, "head -c 65536 /dev/zero", time.Minute},
		{"true base64-encoded command/timeout", pipes,
			`eval "$(printf %s ` + base64.StdEncoding.EncodeToString([]byte("true")) + ` | base64 -d)"`, time.Minute},
		{"exec /bin/true/timeout", pipes, "/bin/true", time.Minute},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s, _ := readyShell(b, c.tr, "")
			ctx := context.Background()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Run(ctx, c.command, c.timeout); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkNixpkgsFraming measures the NixOS test driver's framing on the
// same local bash, for comparison: `timeout 900 bash -c '…' | (base64 -w 0;
// echo)`, then `echo ${PIPESTATUS[0]}`.
func BenchmarkNixpkgsFraming(b *testing.B) {
	g := startGuest(b, pipes, "")
	r := bufio.NewReader(g.conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			b.Fatal(err)
		}
		if strings.Contains(line, guest.Marker) {
			break
		}
	}
	for b.Loop() {
		g.write(b, "timeout 900 bash -c "+Quote("set -euo pipefail; true")+" | (base64 -w 0; echo)\n")
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
		g.write(b, "echo ${PIPESTATUS[0]}\n")
		if _, err := r.ReadString('\n'); err != nil {
			b.Fatal(err)
		}
	}
}
