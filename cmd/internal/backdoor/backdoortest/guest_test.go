package backdoortest

import (
	"strings"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// TestHandshake checks that the fake runs what the real guest script runs
// after it has opened the port: the marker, then the shell reading the port.
// A line added there (or a change of the shell) is noticed here.
func TestHandshake(t *testing.T) {
	h, err := Handshake()
	if err != nil {
		t.Fatal(err)
	}
	want := "echo \"" + guest.Marker + "\"\nPS1=\"\" exec /bin/bash --norc\n"
	if h != want {
		t.Errorf("the guest script's handshake is %q, want %q: check that the fake guest still runs it over pipes", h, want)
	}
	for _, tr := range []Transport{Pipes, PTY} {
		s, err := Script(tr)
		if err != nil || !strings.Contains(s, guest.Marker) {
			t.Errorf("Script(%s) = %q, %v", tr, s, err)
		}
	}
}
