// Package compat is the proof that scripts written for nixpkgs' NixOS test
// driver run unchanged on distrotest: it runs the test scripts in this
// directory (written in nixpkgs' idiom: timedelta durations, test_driver
// imports, the message texts nixpkgs' own driver tests match on) on the
// prepared Debian 13 image, through the driver CLI spelled as nixpkgs'
// nixos-test-driver is called, and drives the interactive driver in a real
// terminal (tmux) as a person would.
//
// These tests boot VMs (one per test) and take minutes under TCG. They run
// only with DISTROTEST_VM_TESTS=1 and use DISTROTEST_TEST_IMAGE (a prepared
// image directory; when unset, `distrotest-gen image prepare debian/13`
// makes one through the cache). Otherwise each test says why it skipped.
package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distrotest/distrotest/tests/testbin"
)

var (
	imageOnce sync.Once
	imageDir  string
	imageErr  error
)

// setup skips unless VM tests are selected, builds the binaries once and
// finds the prepared image.
func setup(t *testing.T) (bin, image string) {
	t.Helper()
	testbin.RequireVM(t)
	bin = testbin.Binaries(t)
	imageOnce.Do(func() {
		imageDir = os.Getenv("DISTROTEST_TEST_IMAGE")
		if imageDir == "" {
			out, err := exec.Command(filepath.Join(bin, "distrotest-gen"), "image", "prepare", "debian/13").Output()
			if err != nil {
				imageErr = fmt.Errorf("distrotest-gen image prepare debian/13: %v", err)
				return
			}
			imageDir = strings.TrimSpace(string(out))
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return bin, imageDir
}

func TestMain(m *testing.M) { testbin.Main(m) }

// writeConfig writes a driver.json for one machine named node on vlan 1.
func writeConfig(t *testing.T, dir, image, script, node string) string {
	t.Helper()
	cfg := map[string]any{
		"version":     1,
		"name":        "compat",
		"test_script": script,
		"vlans":       []int{1},
		"machines":    []map[string]any{{"name": node, "image": image, "vlans": []int{1}}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "driver.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSuite runs suite.py (every "same" row of the API comparison) with
// the runner called as nixpkgs calls nixos-test-driver.
func TestSuite(t *testing.T) {
	bin, image := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	work := t.TempDir()
	tmp := t.TempDir()
	out := filepath.Join(work, "out")
	config := writeConfig(t, work, image, filepath.Join(testbin.RepoRoot(), "tests", "compat", "suite.py"), "one_two")
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "distrotest"), "run",
		"-c", config, "--output_directory", out, "--junit-xml", "junit.xml",
		"--keep-machine-state=false", "--no-interactive", "--log-level", "warning", "--global-timeout", "20m")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	t.Logf("distrotest run (%s):\n%s", time.Since(start).Round(time.Second), buf.String())
	if err != nil {
		t.Fatalf("the compat suite failed: %v", err)
	}
	log := buf.String()
	if !strings.Contains(log, "compat-shown-warning") {
		t.Error("log.warning() line missing from the log")
	}
	if strings.Contains(log, "compat-hidden-info") {
		t.Error("log.info() shown after log.set_log_level(LogLevel.WARNING)")
	}
	// every script of the suite ran (suite.py lists them), and
	// create_machine.py's machine was made by the runner
	for _, name := range []string{"environment.py", "durations.py", "imports.py", "machine_api.py", "create_machine.py", "reboot.py"} {
		if !strings.Contains(log, "(finished: subtest: compat: "+name) {
			t.Errorf("the log does not show compat: %s finishing", name)
		}
	}
	if !strings.Contains(log, "extra: created by the script: image "+image) {
		t.Error("the log does not show create_machine making extra from the test's image")
	}
	if _, err := os.Stat(filepath.Join(out, "junit.xml")); err != nil {
		t.Errorf("--junit-xml: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "compat.txt")); err != nil || string(b) != "written through out_dir\n" {
		t.Errorf("machine.out_dir / name: %q, %v", b, err)
	}
	testbin.AssertNothingLeft(t, tmp)
}

// tmux drives a terminal session on a private server socket.
type tmux struct {
	t      *testing.T
	socket string
	conf   string
}

func (x tmux) run(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-S", x.socket, "-f", x.conf}, args...)...).CombinedOutput()
	return string(out), err
}

func (x tmux) send(keys ...string) {
	x.t.Helper()
	if out, err := x.run(append([]string{"send-keys", "-t", "dt"}, keys...)...); err != nil {
		x.t.Fatalf("tmux send-keys %q: %v: %s", keys, err, out)
	}
}

// screen is everything the terminal showed (the history and the pane),
// without the empty lines below the cursor, so that it only grows.
func (x tmux) screen() string {
	out, _ := x.run("capture-pane", "-p", "-J", "-t", "dt", "-S", "-")
	return strings.TrimRight(out, "\n ")
}

// waitFor waits until the screen, after the part seen by earlier calls
// (from), satisfies ok; it returns the new "from".
func (x tmux) waitFor(what string, from int, d time.Duration, ok func(s string) bool) int {
	x.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := x.screen()
		if len(s) >= from && ok(s[from:]) {
			return len(s)
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("waited %s for %s; the terminal shows:\n%s", d, what, s)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// promptAfter reports whether s holds want and, on a later line, an empty
// prompt (">>>" for Python, "$" for shell_interact).
func promptAfter(want, prompt string) func(string) bool {
	return func(s string) bool {
		i := strings.Index(s, want)
		if i < 0 {
			return false
		}
		lines := strings.Split(s[i:], "\n")
		for _, l := range lines[1:] {
			if strings.TrimSpace(l) == prompt {
				return true
			}
		}
		return false
	}
}

func atPrompt(want string) func(string) bool { return promptAfter(want, ">>>") }

// TestInteractive drives `distrotest run --interactive` in a real terminal
// as a person would: start_all(), a command, shell_interact() with its
// prompt, Ctrl-D back to Python, run_tests(), exit; nothing is left after.
func TestInteractive(t *testing.T) {
	bin, image := setup(t)
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatalf("tmux is needed for this test (apt-get install tmux): %v", err)
	}
	work := t.TempDir()
	tmp := t.TempDir()
	config := writeConfig(t, work, image, filepath.Join(testbin.RepoRoot(), "tests", "compat", "interactive.py"), "machine")
	conf := filepath.Join(work, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g history-limit 100000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	x := tmux{t: t, socket: filepath.Join(work, "tmux.sock"), conf: conf}
	shell := fmt.Sprintf("env TMPDIR=%s HOME=%s %s run -I -c %s -o %s; echo distrotest-exited-$?; sleep 600",
		tmp, work, filepath.Join(bin, "distrotest"), config, filepath.Join(work, "out"))
	if out, err := x.run("new-session", "-d", "-s", "dt", "-c", work, "-x", "200", "-y", "50", shell); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() {
		t.Logf("terminal at the end:\n%s", x.screen())
		_, _ = x.run("kill-server")
	})

	at := x.waitFor("the interactive prompt", 0, 2*time.Minute, atPrompt("distrotest interactive driver"))
	// Boot messages would scroll between the prompts.
	x.send("serial_stdout_off()", "Enter")
	at = x.waitFor("serial_stdout_off()", at, 2*time.Minute, atPrompt("serial_stdout_off()"))
	x.send("start_all()", "Enter")
	at = x.waitFor("start_all() to return", at, 5*time.Minute, atPrompt("start_all()"))
	x.send(`print(machine.succeed("echo hello-from-$((6 * 7))"))`, "Enter")
	at = x.waitFor("the command's output", at, 20*time.Minute, atPrompt("hello-from-42"))

	x.send("machine.shell_interact()", "Enter")
	at = x.waitFor("the shell prompt", at, 5*time.Minute, promptAfter("Terminal is ready", "$"))
	x.send("echo inside-$((40 + 2)); hostname", "Enter")
	at = x.waitFor("the shell's output", at, 5*time.Minute, promptAfter("inside-42\nmachine", "$"))
	x.send("C-d")
	at = x.waitFor("Ctrl-D back to Python", at, 2*time.Minute, func(s string) bool {
		for _, l := range strings.Split(s, "\n") {
			if strings.TrimSpace(l) == ">>>" {
				return true
			}
		}
		return false
	})

	x.send("run_tests()", "Enter")
	at = x.waitFor("run_tests()", at, 10*time.Minute, atPrompt("run_tests-finished-42"))
	x.send(`machine.succeed("test -e /tmp/run-tests-ran")`, "Enter")
	at = x.waitFor("the check after run_tests()", at, 5*time.Minute, atPrompt("test -e /tmp/run-tests-ran"))

	x.send("exit()", "Enter")
	x.waitFor("distrotest to exit", at, 5*time.Minute, func(s string) bool {
		return strings.Contains(s, "distrotest-exited-")
	})
	if s := x.screen(); !strings.Contains(s, "distrotest-exited-0") {
		t.Errorf("distrotest did not exit 0:\n%s", s)
	}
	// The line history is kept where the person started the driver.
	if b, err := os.ReadFile(filepath.Join(work, ".distrotest-history")); err != nil || !strings.Contains(string(b), "run_tests()") {
		t.Errorf("readline history in the working directory: %q, %v", b, err)
	}
	testbin.AssertNothingLeft(t, tmp)
}
