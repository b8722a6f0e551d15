package imagebuild

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInstalledPackages(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    map[string]string
		wantErr string
	}{
		{
			name: "installed, removed and multi-line fields",
			status: `Package: systemd
Status: install ok installed
Priority: important
Version: 257.8-1~deb13u2
Description: system and service manager
 systemd is a system and service manager for Linux.
 .
 It provides a dependency system.

Package: old
Status: deinstall ok config-files
Version: 1.0

Package: bash
Status: install ok installed
Version: 5.2.37-2+b5
`,
			want: map[string]string{"systemd": "257.8-1~deb13u2", "bash": "5.2.37-2+b5"},
		},
		{name: "empty", status: "", want: map[string]string{}},
		{name: "malformed", status: "Package systemd\n", wantErr: "malformed line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := installedPackages([]byte(tt.status))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("installedPackages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpstreamMajor(t *testing.T) {
	tests := []struct {
		version string
		want    int
		wantErr bool
	}{
		{version: "257.8-1~deb13u2", want: 257},
		{version: "252.39-1~deb12u1", want: 252},
		{version: "1:2.3-1", want: 2},
		{version: "258", want: 258},
		{version: "", wantErr: true},
		{version: "git20240101", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			got, err := upstreamMajor(tt.version)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("upstreamMajor(%q) = %d, %v; want %d, error %v", tt.version, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
