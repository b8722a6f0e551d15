package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jstemmer/go-junit-report/v2/junit"

	"github.com/distrotest/distrotest/cmd/internal/atomicfile"
)

// MainTestName names the test case that stands for the whole script when
// it has no subtest, or when it failed outside of every subtest.
const MainTestName = "test script"

// JUnit returns the run as a JUnit test suite named suite: one test case
// per subtest, with the lines logged inside it as its output and its
// traceback as its failure. failure is the run's own failure ("" when the
// script passed); when no subtest carries it, a MainTestName test case does.
func (l *Log) JUnit(suite, failure string) junit.Testsuites {
	l.mu.Lock()
	defer l.mu.Unlock()
	end := l.now()

	outputs := map[*Block]*strings.Builder{}
	var all strings.Builder
	for _, ln := range l.lines {
		all.WriteString(ln.text)
		all.WriteByte('\n')
		if ln.test != nil {
			if outputs[ln.test] == nil {
				outputs[ln.test] = &strings.Builder{}
			}
			outputs[ln.test].WriteString(strings.TrimPrefix(ln.text, strings.Repeat("  ", l.childDepth(ln.test))))
			outputs[ln.test].WriteByte('\n')
		}
	}

	ts := junit.Testsuite{Name: suite}
	ts.SetTimestamp(l.start)
	ts.Time = seconds(end.Sub(l.start))
	anyFailed := false
	for _, b := range l.tests {
		elapsed := b.elapsed
		if !b.ended {
			elapsed = end.Sub(b.start)
		}
		tc := junit.Testcase{Name: b.test, Classname: suite, Time: seconds(elapsed)}
		if out := outputs[b]; out != nil {
			tc.SystemOut = &junit.Output{Data: xmlText(out.String())}
		}
		switch {
		case b.failure != "":
			anyFailed = true
			tc.Failure = &junit.Result{Message: "subtest failed", Data: xmlText(b.failure)}
		case !b.ended:
			// The run ended (timeout, signal) inside this subtest.
			anyFailed = true
			msg := failure
			if msg == "" {
				msg = "the run ended before the subtest did"
			}
			tc.Failure = &junit.Result{Message: "subtest did not finish", Data: xmlText(msg)}
		}
		ts.AddTestcase(tc)
	}
	if len(l.tests) == 0 || (failure != "" && !anyFailed) {
		tc := junit.Testcase{Name: MainTestName, Classname: suite, Time: seconds(end.Sub(l.start))}
		if len(l.tests) == 0 {
			tc.SystemOut = &junit.Output{Data: xmlText(all.String())}
		}
		if failure != "" {
			tc.Failure = &junit.Result{Message: "test script failed", Data: xmlText(failure)}
		}
		ts.AddTestcase(tc)
	}
	ts.SystemOut = &junit.Output{Data: xmlText(all.String())}
	var out junit.Testsuites
	out.AddSuite(ts)
	return out
}

// WriteJUnit writes JUnit(suite, failure) to path, through a temporary
// file renamed into place.
func (l *Log) WriteJUnit(path, suite, failure string) error {
	suites := l.JUnit(suite, failure)
	var buf bytes.Buffer
	if err := suites.WriteXML(&buf); err != nil {
		return fmt.Errorf("writing junit report %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing junit report: %w", err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing junit report: %w", err)
	}
	return nil
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.3f", d.Seconds())
}

// xmlText drops what XML 1.0 cannot carry (control characters other than
// tab, newline and carriage return; invalid UTF-8), which console output
// is full of.
func xmlText(s string) string {
	ok := func(r rune) bool {
		return r == '\t' || r == '\n' || r == '\r' ||
			r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
	}
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !ok(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError {
			b.WriteRune('\uFFFD')
		} else if ok(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}
