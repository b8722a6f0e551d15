package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jstemmer/go-junit-report/v2/junit"
)

// fakeClock advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return func() time.Time {
		t = t.Add(step)
		return t
	}
}

func TestTerminalOutput(t *testing.T) {
	tests := []struct {
		name string
		run  func(l *Log)
		want string
	}{
		{
			name: "nested blocks with timings and machine prefixes",
			run: func(l *Log) {
				r := l.Root()
				r.Log("", "starting")
				b := r.Nested("server", "must succeed: true")
				b.Log("server", "output: hello")
				c := b.Nested("", "inner")
				c.End("")
				b.End("")
				r.Log("", "done")
			},
			want: `starting
server: must succeed: true
  server: output: hello
  inner
  (finished: inner, in 0.10 seconds)
server: (finished: must succeed: true, in 0.30 seconds)
done
`,
		},
		{
			name: "subtest and errors",
			run: func(l *Log) {
				s := l.Root().Subtest("first")
				s.Error("Traceback (most recent call last):\n  line 2")
				s.End("boom")
				s.End("twice") // ignored
			},
			want: `subtest: first
  !!! Traceback (most recent call last):
  !!!   line 2
(finished: subtest: first, in 0.10 seconds)
`,
		},
		{
			name: "serial lines only while on",
			run: func(l *Log) {
				w := l.SerialWriter("server")
				w.Write([]byte("boot\r\npart"))
				w.Write([]byte("ial\n"))
				l.SetSerial(false)
				w.Write([]byte("hidden\n"))
				l.SetSerial(true)
				l.Serial("client", "shown")
			},
			want: "server # boot\nserver # partial\nclient # shown\n",
		},
		{
			name: "debug lines hidden",
			run: func(l *Log) {
				l.Root().Debug("", "not shown")
			},
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := New(&buf, Options{Serial: true, Now: fakeClock(100 * time.Millisecond)})
			tt.run(l)
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestColor(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{Color: true, Now: fakeClock(time.Millisecond)})
	l.Root().Nested("server", "step").End("")
	l.Root().Error("bad")
	out := buf.String()
	if !strings.Contains(out, "\x1b[") {
		t.Errorf("no escape sequence in coloured output %q", out)
	}
	for _, ln := range l.lines {
		if strings.Contains(ln.text, "\x1b") {
			t.Errorf("captured line %q has an escape sequence", ln.text)
		}
	}

	buf.Reset()
	l = New(&buf, Options{Color: false})
	l.Root().Error("bad")
	if strings.Contains(buf.String(), "\x1b") {
		t.Errorf("escape sequence without colour: %q", buf.String())
	}
}

func TestUseColor(t *testing.T) {
	var buf bytes.Buffer
	if UseColor(&buf) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if UseColor(f) {
		t.Error("a file is not a terminal")
	}
}

func TestJUnit(t *testing.T) {
	tests := []struct {
		name    string
		run     func(l *Log)
		failure string
		want    []junit.Testcase
	}{
		{
			name: "one case per subtest",
			run: func(l *Log) {
				l.Root().Log("", "outside")
				a := l.Root().Subtest("a")
				a.Log("m", "in a")
				n := a.Nested("m", "step")
				n.Log("", "deep")
				n.End("")
				a.End("")
				b := l.Root().Subtest("b")
				b.End("Traceback\nRequestedAssertionFailed: x")
			},
			failure: "RequestedAssertionFailed: x",
			want: []junit.Testcase{
				{Name: "a", Classname: "suite", Time: "0.300", SystemOut: &junit.Output{Data: "m: in a\nm: step\n  deep\nm: (finished: step, in 0.10 seconds)\n"}},
				{Name: "b", Classname: "suite", Time: "0.100", Failure: &junit.Result{Message: "subtest failed", Data: "Traceback\nRequestedAssertionFailed: x"}},
			},
		},
		{
			name: "no subtest: one main case",
			run: func(l *Log) {
				l.Root().Log("", "hello\x00\x1b world")
			},
			want: []junit.Testcase{
				{Name: MainTestName, Classname: "suite", Time: "0.100", SystemOut: &junit.Output{Data: "hello world\n"}},
			},
		},
		{
			name: "failure outside subtests gets a main case",
			run: func(l *Log) {
				l.Root().Subtest("ok").End("")
			},
			failure: "global timeout of 1s reached",
			want: []junit.Testcase{
				{Name: "ok", Classname: "suite", Time: "0.100"},
				{Name: MainTestName, Classname: "suite", Time: "0.300", Failure: &junit.Result{Message: "test script failed", Data: "global timeout of 1s reached"}},
			},
		},
		{
			name: "run ended inside a subtest",
			run: func(l *Log) {
				l.Root().Subtest("hangs")
			},
			failure: "global timeout of 1s reached",
			want: []junit.Testcase{
				{Name: "hangs", Classname: "suite", Time: "0.100", Failure: &junit.Result{Message: "subtest did not finish", Data: "global timeout of 1s reached"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := New(&buf, Options{Now: fakeClock(100 * time.Millisecond)})
			tt.run(l)
			got := l.JUnit("suite", tt.failure)
			if len(got.Suites) != 1 {
				t.Fatalf("got %d suites, want 1", len(got.Suites))
			}
			if diff := cmp.Diff(tt.want, got.Suites[0].Testcases); diff != "" {
				t.Errorf("test cases (-want +got):\n%s", diff)
			}
			wantFailures := 0
			for _, tc := range tt.want {
				if tc.Failure != nil {
					wantFailures++
				}
			}
			if got.Suites[0].Failures != wantFailures || got.Failures != wantFailures {
				t.Errorf("failures = %d/%d, want %d", got.Suites[0].Failures, got.Failures, wantFailures)
			}
		})
	}
}

func TestWriteJUnit(t *testing.T) {
	l := New(&bytes.Buffer{}, Options{})
	s := l.Root().Subtest("x <&> y")
	s.End("assert \"a\" < 'b'")
	path := filepath.Join(t.TempDir(), "sub", "junit.xml")
	if err := l.WriteJUnit(path, "my test", ""); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got junit.Testsuites
	if err := xml.Unmarshal(data, &got); err != nil {
		t.Fatalf("junit.xml does not parse: %v\n%s", err, data)
	}
	if n := len(got.Suites); n != 1 || got.Suites[0].Name != "my test" || got.Suites[0].Testcases[0].Name != "x <&> y" {
		t.Errorf("unexpected report:\n%s", data)
	}
	if got.Suites[0].Testcases[0].Failure.Data != "assert \"a\" < 'b'" {
		t.Errorf("failure data = %q", got.Suites[0].Testcases[0].Failure.Data)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestHandler(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{Now: fakeClock(time.Second)})
	log := slog.New(l.Handler(slog.LevelInfo)).With(MachineKey, "server")
	b := l.Root().Nested("server", "starting")
	log.InfoContext(WithBlock(context.Background(), b), "guest shell ready", "waited", 2*time.Second)
	log.Debug("hidden")
	log.Warn("odd", "reason", "two words")
	slog.New(l.Handler(slog.LevelInfo)).WithGroup("g").Info("plain", "k", "v")
	want := `server: starting
  server: guest shell ready waited=2s
server: warn: odd reason="two words"
plain g.k=v
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}

func TestBind(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Options{Now: fakeClock(time.Second)})
	log := slog.New(l.Handler(slog.LevelInfo)).With(MachineKey, "server")
	b := l.Root().Nested("", "start all VMs")
	unbind := l.Bind("server", b)
	log.Info("starting qemu")
	slog.New(l.Handler(slog.LevelInfo)).Info("other")
	unbind()
	log.Info("exited")
	want := `start all VMs
  server: starting qemu
other
server: exited
`
	if diff := cmp.Diff(want, buf.String()); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
}
