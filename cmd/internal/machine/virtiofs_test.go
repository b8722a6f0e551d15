package machine

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/manifest"
	"github.com/distrotest/distrotest/cmd/internal/qemu"
	"github.com/distrotest/distrotest/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func TestVirtiofsdArgs(t *testing.T) {
	tests := []struct {
		name string
		d    daemon
		want []string
	}{
		{"store", daemon{Tag: "nix-store", Dir: "/nix/store", Socket: "/s/m.vfs-store", ReadOnly: true, Cache: storeCache}, []string{
			"--socket-path=/s/m.vfs-store", "--shared-dir=/nix/store", "--tag=nix-store",
			"--sandbox=none", "--seccomp=none", "--cache=always", "--log-level=warn", "--readonly",
		}},
		{"share", daemon{Tag: "data", Dir: "/home/me/data dir", Socket: "/s/m.vfs0", Cache: shareCache}, []string{
			"--socket-path=/s/m.vfs0", "--shared-dir=/home/me/data dir", "--tag=data",
			"--sandbox=none", "--seccomp=none", "--cache=auto", "--log-level=warn",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, virtiofsdArgs(tt.d)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestDaemonsAndQEMUConfig(t *testing.T) {
	m := &Machine{cfg: Config{Name: "m", ShareTransport: qemu.TransportVirtiofs, NixStore: "/nix/store",
		Shares: []Share{{Tag: "a", Source: "/a"}, {Tag: "b", Source: "/b", ReadOnly: true}}}, sockDir: "/s", manifest: &manifest.Manifest{}}
	got := m.QEMUConfig().Shares
	want := []qemu.Share{
		{Tag: "nix-store", Path: "/nix/store", ReadOnly: true, Transport: "virtiofs", Socket: "/s/m.vfs-store"},
		{Tag: "a", Path: "/a", Transport: "virtiofs", Socket: "/s/m.vfs0"},
		{Tag: "b", Path: "/b", ReadOnly: true, Transport: "virtiofs", Socket: "/s/m.vfs1"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("virtiofs shares (-want +got):\n%s", d)
	}
	m.cfg.ShareTransport = ""
	for _, s := range m.QEMUConfig().Shares {
		if s.Transport != "" || s.Socket != "" {
			t.Errorf("9p share %+v has a virtiofs transport", s)
		}
	}
	if len(m.daemons()) != 0 {
		t.Error("9p machine has virtiofs daemons")
	}
}

// TestStartDaemons runs the real virtiofsd (no VM): it must listen on its
// socket, die with Kill, and a directory it cannot serve must give an error
// naming the share.
func TestStartDaemons(t *testing.T) {
	bin := os.Getenv("DISTROTEST_VIRTIOFSD")
	if bin == "" {
		if p, err := exec.LookPath("virtiofsd"); err == nil {
			bin = p
		}
	}
	for _, p := range VirtiofsdPaths {
		if bin == "" {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		testenv.Missing(t, "no virtiofsd installed (scripts/install-virtiofsd.sh)")
	}
	sockDir, err := os.MkdirTemp("/tmp", "dt-vfs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	share := t.TempDir()
	newMachine := func(src string) *Machine {
		return &Machine{cfg: Config{Name: "m", ShareTransport: qemu.TransportVirtiofs, Virtiofsd: bin,
			Shares: []Share{{Tag: "data", Source: src, Target: "/mnt"}}},
			log: slog.New(slog.DiscardHandler), sockDir: sockDir, stateDir: t.TempDir()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	procs, err := newMachine(share).startDaemons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 {
		t.Fatalf("%d daemons, want 1", len(procs))
	}
	fi, err := os.Stat(filepath.Join(sockDir, "m.vfs0"))
	if err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket: %v, %v", fi, err)
	}
	pid := procs[0].Pid()
	if err := stopDaemons(procs); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("virtiofsd (pid %d) still exists after stopDaemons: %v", pid, err)
	}

	_, err = newMachine(filepath.Join(share, "missing")).startDaemons(ctx)
	if err == nil || !strings.Contains(err.Error(), "virtiofsd for data") || !strings.Contains(err.Error(), "exited") {
		t.Errorf("virtiofsd on a missing directory: %v", err)
	}
}
