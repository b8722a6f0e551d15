package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessExit(t *testing.T) {
	p, err := Start("/bin/sh", []string{"-c", "echo warning: one; echo 'error: two' >&2; exit 3"}, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p.Status(); got != "exit status 3" {
		t.Errorf("Status = %q", got)
	}
	if got := p.Output(); got != "warning: one\nerror: two" {
		t.Errorf("Output = %q", got)
	}
	var ee interface{ ExitCode() int }
	if err := p.Err(); !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Err = %v", err)
	}
	if err := p.Kill(); err != nil {
		t.Errorf("Kill after exit: %v", err)
	}
}

func TestProcessKillTakesTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child")
	// The child sleeps in the background, as QEMU's helpers would.
	p, err := Start("/bin/sh", []string{"-c", "sleep 300 & echo $! >" + pidFile + "; wait"}, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	for i := 0; i < 100 && child == 0; i++ {
		data, _ := os.ReadFile(pidFile)
		child, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		time.Sleep(20 * time.Millisecond)
	}
	if child == 0 {
		t.Fatal("child did not start")
	}
	if p.Exited() || p.Status() != "running" {
		t.Fatal("process ended early")
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := p.Status(); got != "signal: killed" {
		t.Errorf("Status = %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(child, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("child %d survived Kill", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProcessWaitHonoursContext(t *testing.T) {
	p, err := Start("/bin/sleep", []string{"300"}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %v", err)
	}
	if sa := sysProcAttr(); !sa.Setpgid {
		t.Error("QEMU would share the runner's process group")
	}
}
