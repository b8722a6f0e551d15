package backdoor

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// readyShell starts a fake guest and a Shell that has seen its marker.
func readyShell(t testing.TB, tr transport, junk string) (*Shell, *fakeGuest) {
	t.Helper()
	g := startGuest(t, tr, junk)
	s := New(g.conn, nil)
	s.Encoding = encoding(tr)
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	return s, g
}

func run(t testing.TB, s *Shell, command string, timeout time.Duration) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := s.Run(ctx, command, timeout)
	if err != nil {
		t.Fatalf("Run(%q): %v", command, err)
	}
	return res
}

// printfAll returns a printf command printing every byte from..255.
func printfAll(from int) (string, []byte) {
	var cmd strings.Builder
	var want []byte
	cmd.WriteString("printf '")
	for c := from; c < 256; c++ {
		fmt.Fprintf(&cmd, `\%03o`, c)
		want = append(want, byte(c))
	}
	cmd.WriteString("'")
	return cmd.String(), want
}

func TestRun(t *testing.T) {
	textCmd, textWant := printfAll(1)
	binCmd, binWant := printfAll(0)
	tests := []struct {
		name    string
		command string
		want    Result
	}{
		{"echo", "echo hello", Result{Stdout: []byte("hello\n")}},
		{"empty command", "", Result{Stdout: []byte{}}},
		{"no output", "true", Result{Stdout: []byte{}}},
		{"exit status", "echo partial; exit 3", Result{Status: 3, Stdout: []byte("partial\n")}},
		{"errexit", "false; echo after", Result{Status: 1, Stdout: []byte{}}},
		{"pipefail", "false | true", Result{Status: 1, Stdout: []byte{}}},
		{"nounset", `echo "$surely_not_set"`, Result{Status: 1, Stdout: []byte{}}},
		{"no positional parameters", `echo "$#"`, Result{Stdout: []byte("0\n")}},
		{"syntax error", "if then fi", Result{Status: 2, Stdout: []byte{}}},
		{"killed by a signal", "kill -KILL $BASHPID", Result{Status: 137, Stdout: []byte{}}},
		{"stdin is /dev/null", "cat; echo done", Result{Stdout: []byte("done\n")}},
		{"stderr is not stdout", "echo err >&2; echo out", Result{Stdout: []byte("out\n")}},
		{"quotes and dollars",
			`x='single '"'"' quote'; y="double \" quote \$notexpanded"; printf '%s|%s|%s\n' "$x" "$y" 'back\slash $HOME'`,
			Result{Stdout: []byte(`single ' quote|double " quote $notexpanded|back\slash $HOME` + "\n")}},
		{"newlines in the command", "echo one\necho two\n\necho 'three\nfour'", Result{Stdout: []byte("one\ntwo\nthree\nfour\n")}},
		{"carriage returns and controls", "printf 'a\\r\\n\\x03\\x04\\x1b[0m'", Result{Stdout: []byte("a\r\n\x03\x04\x1b[0m")}},
		{"utf-8", "printf 'h\\xc3\\xa9llo \\xe2\\x82\\xac'", Result{Stdout: []byte("héllo €")}},
		{"every byte but NUL (raw reply)", textCmd, Result{Stdout: textWant}},
		{"every byte (base64 reply)", binCmd, Result{Stdout: binWant}},
		{"no trailing newline", "printf x", Result{Stdout: []byte("x")}},
		{"only newlines", "printf '\\n\\n'", Result{Stdout: []byte("\n\n")}},
		{"marker in the output", "echo '" + guest.Marker + "'", Result{Stdout: []byte(guest.Marker + "\n")}},
		{"frame lookalike in the output", "echo 'DT 1 0 0 r 5'; echo '\nDT x end 0'", Result{Stdout: []byte("DT 1 0 0 r 5\n\nDT x end 0\n")}},
		{"65535 bytes (raw)", "head -c 65535 /dev/zero | tr '\\0' a", Result{Stdout: bytes.Repeat([]byte("a"), 65535)}},
		{"65536 bytes (base64)", "head -c 65536 /dev/zero | tr '\\0' a", Result{Stdout: bytes.Repeat([]byte("a"), 65536)}},
		{"65536 bytes of UTF-8 text (base64)", "for i in {1..32768}; do printf '\\xc3\\xa9'; done", Result{Stdout: bytes.Repeat([]byte("é"), 32768)}},
		{"cd and variables do not leak", "cd /; X=1", Result{Stdout: []byte{}}},
		// On the pty, the controlling terminal: the job is in a background
		// process group, which must not stop it.
		{"reading the terminal fails, does not stop", "cat /dev/tty || echo failed", Result{Stdout: []byte("failed\n")}},
		{"terminal modes can be read and set", "stty -F /dev/tty -g >/dev/null 2>&1 || true; stty -F /dev/tty -echo 2>/dev/null || true; echo ok", Result{Stdout: []byte("ok\n")}},
	}
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, g := readyShell(t, tr, "")
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got := run(t, s, tt.command, 10*time.Second)
					if diff := cmp.Diff(tt.want, got); diff != "" {
						t.Errorf("Run(%q) mismatch (-want +got):\n%s", tt.command, diff)
					}
				})
			}
			// State does not leak between commands.
			got := run(t, s, `echo "$PWD ${X-unset}"`, 0)
			if !strings.HasSuffix(string(got.Stdout), " unset\n") || strings.HasPrefix(string(got.Stdout), "/ ") {
				t.Errorf("state leaked between commands: %q", got.Stdout)
			}
			if !strings.Contains(g.consoleText(t), "err\n") {
				t.Errorf("stderr of a command did not reach the console")
			}
		})
	}
}

func TestLargeOutput(t *testing.T) {
	data := make([]byte, 1<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, g := readyShell(t, tr, "")
			path := filepath.Join(g.tmp, "big")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			got := run(t, s, "cat "+Quote(path), 0)
			if got.Status != 0 || !bytes.Equal(got.Stdout, data) {
				t.Fatalf("cat of 1 MiB: status %d, %d bytes, equal %v", got.Status, len(got.Stdout), bytes.Equal(got.Stdout, data))
			}
			// A 1 MiB command line.
			arg := strings.Repeat("x", 1<<20)
			got = run(t, s, "v="+Quote(arg)+"; echo ${#v}", 0)
			if diff := cmp.Diff("1048576\n", string(got.Stdout)); diff != "" {
				t.Errorf("1 MiB command (-want +got):\n%s", diff)
			}
		})
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}

// background parses the pid a command printed and kills it at cleanup.
func background(t *testing.T, out []byte) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("no pid in %q", out)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return pid
}

func TestBackgroundProcessDoesNotBlock(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, _ := readyShell(t, tr, "")
			for _, cmd := range []string{
				"sleep 1000 & echo $!",
				"(sleep 1000; echo late) & echo $!",
				"nohup sleep 1000 >/dev/null 2>&1 & echo $!",
			} {
				start := time.Now()
				res := run(t, s, cmd, 60*time.Second)
				if took := time.Since(start); took > 20*time.Second {
					t.Errorf("Run(%q) took %v", cmd, took)
				}
				pid := background(t, res.Stdout)
				time.Sleep(50 * time.Millisecond)
				if !alive(pid) {
					t.Errorf("Run(%q): background process %d did not survive the command", cmd, pid)
				}
			}
			// And the shell goes on (also past the next command's
			// watchdog).
			if got := run(t, s, "echo ok", 10*time.Second); string(got.Stdout) != "ok\n" {
				t.Errorf("after background jobs: %q", got.Stdout)
			}
		})
	}
}

// TestBackgroundAppends: a background process that keeps appending to the
// command's output after the command ended cannot make a reply disagree
// with itself: the reply is the output as it was when the command ended
// (plus what was appended before the guest measured it), checked.
func TestBackgroundAppends(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, _ := readyShell(t, tr, "")
			for range 3 {
				res := run(t, s, "head -c 1048576 /dev/zero | tr '\\0' a; (for i in $(seq 20000); do echo more; done) &", 60*time.Second)
				out := res.Stdout
				if len(out) < 1<<20 || strings.Count(string(out[:1<<20]), "a") != 1<<20 {
					t.Fatalf("%d bytes, want 1 MiB of a first", len(out))
				}
				// Lines in order, nothing else; the last may be cut where
				// the guest measured the file (a write that crosses a page
				// boundary grows the file one page at a time).
				rest := string(out[1<<20:])
				whole := strings.Repeat("more\n", len(rest)/5)
				if !strings.HasPrefix(rest, whole) || !strings.HasPrefix("more\n", rest[len(whole):]) {
					t.Errorf("after the output (%d bytes): %q … %q", len(rest), firstBytes(rest), lastBytes(rest))
				}
			}
			time.Sleep(500 * time.Millisecond) // the appenders end
			if got := run(t, s, "echo ok", 10*time.Second); string(got.Stdout) != "ok\n" {
				t.Errorf("after the appenders: %q", got.Stdout)
			}
		})
	}
}

func lastBytes(s string) string {
	if len(s) > 80 {
		return "..." + s[len(s)-80:]
	}
	return s
}

func firstBytes(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func TestTimeout(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, _ := readyShell(t, tr, "")
			// A sleep of its own: other tests on the host may sleep too.
			var b [2]byte
			_, _ = rand.Read(b[:])
			sleep := fmt.Sprintf("sleep 987654.%d", int(b[0])<<8|int(b[1]))
			start := time.Now()
			res := run(t, s, "echo before; "+sleep+" & echo $! >&2; "+sleep+"; echo never", 500*time.Millisecond)
			took := time.Since(start)
			want := Result{Status: TimeoutStatus, Stdout: []byte("before\n"), TimedOut: true}
			if diff := cmp.Diff(want, res); diff != "" {
				t.Errorf("timed-out command (-want +got):\n%s", diff)
			}
			if took < 500*time.Millisecond || took > 20*time.Second {
				t.Errorf("timed-out command took %v, want about 0.5s", took)
			}
			// The whole process group is gone, background jobs included
			// (SIGKILLed processes may take a moment to go under load).
			res = run(t, s, "for i in $(seq 100); do pgrep -x -f '"+sleep+"' >/dev/null || exit 0; sleep 0.1; done; pgrep -x -f '"+sleep+"'", 0)
			if len(bytes.TrimSpace(res.Stdout)) > 0 {
				for _, p := range strings.Fields(string(res.Stdout)) {
					pid, _ := strconv.Atoi(p)
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
				t.Errorf("%s survived the timeout by 10 s: pids %q", sleep, res.Stdout)
			}
			// A fired watchdog leaves nothing behind that disarms the next
			// one.
			start = time.Now()
			res = run(t, s, "sleep 1000", 300*time.Millisecond)
			if !res.TimedOut || time.Since(start) > 20*time.Second {
				t.Errorf("second timeout: %+v after %v", res, time.Since(start))
			}
			// A command that ends in time is not marked as timed out, and
			// its watchdog does not fire later.
			if got := run(t, s, "echo fast", 2*time.Second); got.TimedOut || string(got.Stdout) != "fast\n" {
				t.Errorf("fast command: %+v", got)
			}
			res = run(t, s, "sleep 2.5; echo slept", 0)
			if diff := cmp.Diff(Result{Stdout: []byte("slept\n")}, res); diff != "" {
				t.Errorf("command after a cancelled watchdog (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHostDeadline(t *testing.T) {
	s, g := readyShell(t, pipes, "")
	s.Grace = 200 * time.Millisecond
	// A frozen guest: the shell never answers.
	if err := syscall.Kill(g.Cmd.Process.Pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := s.Run(context.Background(), "true", 100*time.Millisecond)
	if !errors.Is(err, ErrUnresponsive) {
		t.Fatalf("Run on a frozen shell: %v, want ErrUnresponsive", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("host deadline took %v", took)
	}
	if _, err := s.Run(context.Background(), "true", 0); !errors.Is(err, ErrNotReady) || !errors.Is(err, ErrUnresponsive) {
		t.Errorf("Run after the deadline: %v, want ErrNotReady wrapping ErrUnresponsive", err)
	}
	// A reboot brings it back.
	if err := syscall.Kill(g.Cmd.Process.Pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	g.write(t, bootScript(t, pipes, "rebooting\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady after reboot: %v", err)
	}
	s.Grace = DefaultGrace // a loaded host is slow
	if got := run(t, s, "echo back", 10*time.Second); string(got.Stdout) != "back\n" {
		t.Errorf("after reboot: %q", got.Stdout)
	}
}

func TestContextCancel(t *testing.T) {
	s, _ := readyShell(t, pipes, "")
	s.Grace = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.Run(ctx, "sleep 1000", 0)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run with an expiring context: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cancel took %v", took)
	}
	// The shell is still running the command: it cannot resynchronise.
	if _, err := s.Run(context.Background(), "true", 0); !errors.Is(err, ErrNotReady) {
		t.Errorf("Run after a cancelled command: %v, want ErrNotReady", err)
	}
}

func TestResyncAfterCancel(t *testing.T) {
	s, _ := readyShell(t, pipes, "")
	s.Grace = 20 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Run(ctx, "sleep 0.5; echo lost", 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run with an expiring context: %v", err)
	}
	// Once the interrupted command ended, the next call finds the end of
	// its reply and goes on.
	if got := run(t, s, "echo next", 0); string(got.Stdout) != "next\n" {
		t.Errorf("after resynchronising: %q", got.Stdout)
	}
}

// TestResume sets up a shell again without a marker, as for a guest
// restored from a snapshot (its shell printed the marker to an earlier host
// connection and has the preamble): Resume asks it for its ready reply,
// the shell keeps its output directory, and runs commands after it.
func TestResume(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, _ := readyShell(t, tr, "")
			run(t, s, "true", 0)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dir := s.info.dir
			if err := s.Resume(ctx); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			if s.info.dir != dir || dir == "" {
				t.Errorf("output directory after Resume: %q, before: %q", s.info.dir, dir)
			}
			if got := run(t, s, "echo resumed", 0); string(got.Stdout) != "resumed\n" || got.Status != 0 {
				t.Errorf("after Resume: status %d, stdout %q", got.Status, got.Stdout)
			}
		})
	}
}

func TestRunBeforeReady(t *testing.T) {
	g := startGuest(t, pipes, "")
	s := New(g.conn, nil)
	defer s.Close()
	if _, err := s.Run(context.Background(), "true", 0); !errors.Is(err, ErrNotReady) {
		t.Errorf("Run before WaitReady: %v, want ErrNotReady", err)
	}
}

func TestDisconnect(t *testing.T) {
	tests := []struct {
		name    string
		tr      transport
		timeout time.Duration
		cut     func(*fakeGuest, *Shell)
		want    error
	}{
		{"guest killed, no timeout", pipes, 0, func(g *fakeGuest, _ *Shell) { g.kill() }, ErrDisconnected},
		{"guest killed, with timeout", pipes, time.Hour, func(g *fakeGuest, _ *Shell) { g.kill() }, ErrDisconnected},
		{"pty guest killed", pty, time.Hour, func(g *fakeGuest, _ *Shell) { g.kill() }, ErrDisconnected},
		{"connection closed", pipes, 0, func(g *fakeGuest, _ *Shell) { g.conn.Close() }, ErrDisconnected},
		{"shell closed", pipes, 0, func(_ *fakeGuest, s *Shell) { s.Close() }, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, g := readyShell(t, tt.tr, "")
			errc := make(chan error, 1)
			go func() {
				_, err := s.Run(context.Background(), "sleep 1000", tt.timeout)
				errc <- err
			}()
			time.Sleep(200 * time.Millisecond)
			tt.cut(g, s)
			select {
			case err := <-errc:
				if !errors.Is(err, tt.want) {
					t.Errorf("pending Run: %v, want %v", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("pending Run did not return after the connection died")
			}
			// Later calls fail at once.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := s.Run(ctx, "true", 0); !errors.Is(err, tt.want) {
				t.Errorf("later Run: %v, want %v", err, tt.want)
			}
			if err := s.WaitReady(ctx); !errors.Is(err, tt.want) {
				t.Errorf("later WaitReady: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDisconnectWhileWaiting(t *testing.T) {
	g := startGuest(t, pipes, "")
	g.kill()
	s := New(g.conn, nil)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The marker may have been printed before the shell died; either way
	// WaitReady must fail, not hang.
	if err := s.WaitReady(ctx); !errors.Is(err, ErrDisconnected) {
		t.Errorf("WaitReady on a dead guest: %v, want ErrDisconnected", err)
	}
}

func TestMarkerAfterGarbage(t *testing.T) {
	junk := `BIOS noise\r\nSpawning backdoor\000\377\376 half a marker: Spawning backdoor root shell.. \n`
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, _ := readyShell(t, tr, junk)
			if got := run(t, s, "echo ok", 10*time.Second); string(got.Stdout) != "ok\n" {
				t.Errorf("after junk: %q", got.Stdout)
			}
		})
	}
}

func TestWaitReadyNoMarker(t *testing.T) {
	s, _ := readyShell(t, pipes, "")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady without a new marker: %v, want a context error", err)
	}
	// Giving up on a marker does not break a working shell.
	if got := run(t, s, "echo ok", 10*time.Second); string(got.Stdout) != "ok\n" {
		t.Errorf("after an abandoned WaitReady: %q", got.Stdout)
	}
}

func TestReboot(t *testing.T) {
	for _, tr := range transports {
		t.Run(string(tr), func(t *testing.T) {
			s, g := readyShell(t, tr, "")
			reboot := func(delay string) {
				g.write(t, "exec bash --norc -c "+Quote("sleep "+delay+"\n"+bootScript(t, tr, "[    0.000000] Linux version\n"))+"\n")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			// Run notices the new marker.
			reboot("0")
			time.Sleep(300 * time.Millisecond)
			if _, err := s.Run(ctx, "echo hi", 5*time.Second); !errors.Is(err, ErrRestarted) {
				t.Fatalf("Run across a reboot: %v, want ErrRestarted", err)
			}
			if _, err := s.Run(ctx, "echo hi", 5*time.Second); !errors.Is(err, ErrNotReady) {
				t.Errorf("Run after a restart: %v, want ErrNotReady", err)
			}
			if err := s.WaitReady(ctx); err != nil {
				t.Fatalf("WaitReady after ErrRestarted: %v", err)
			}
			if got := run(t, s, "echo one", 10*time.Second); string(got.Stdout) != "one\n" {
				t.Errorf("after the first reboot: %q", got.Stdout)
			}

			// WaitReady waits for a marker that comes later.
			reboot("0.5")
			start := time.Now()
			if err := s.WaitReady(ctx); err != nil {
				t.Fatalf("WaitReady during a reboot: %v", err)
			}
			if took := time.Since(start); took < 400*time.Millisecond {
				t.Errorf("WaitReady returned after %v, before the new marker", took)
			}
			if got := run(t, s, "echo two", 10*time.Second); string(got.Stdout) != "two\n" {
				t.Errorf("after the second reboot: %q", got.Stdout)
			}
		})
	}
}

func TestConcurrentRuns(t *testing.T) {
	s, _ := readyShell(t, pipes, "")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				want := fmt.Sprintf("%d-%d\n", i, j)
				res, err := s.Run(context.Background(), "echo "+strings.TrimSpace(want), 10*time.Second)
				if err != nil || string(res.Stdout) != want {
					t.Errorf("Run %s: %q, %v", strings.TrimSpace(want), res.Stdout, err)
				}
			}
		}()
	}
	wg.Wait()
}

func TestOutputFilesCleanedUp(t *testing.T) {
	s, g := readyShell(t, pipes, "")
	for range 150 {
		run(t, s, "echo x", 0)
	}
	// The shell truncates a command's output file after sending its reply,
	// so the host may see the last one before that. A command with no
	// output makes sure every "x" was truncated (it was the race behind
	// this test's failures under load).
	run(t, s, "true", 0)
	dirs, err := filepath.Glob(filepath.Join(g.tmp, "distrotest.*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("guest temp dirs: %v, %v", dirs, err)
	}
	outs, _ := filepath.Glob(filepath.Join(dirs[0], "o.*"))
	if len(outs) > 100 {
		t.Errorf("%d output files left behind", len(outs))
	}
	for _, o := range outs {
		if fi, err := os.Stat(o); err == nil && fi.Size() != 0 {
			t.Errorf("output file %s not truncated (%d bytes)", o, fi.Size())
		}
	}
}

func TestRunRejectsNUL(t *testing.T) {
	s, _ := readyShell(t, pipes, "")
	if _, err := s.Run(context.Background(), "echo a\x00b", 0); err == nil {
		t.Error("Run accepted a NUL byte")
	}
	if got := run(t, s, "echo ok", 0); string(got.Stdout) != "ok\n" {
		t.Errorf("after the rejected command: %q", got.Stdout)
	}
}
