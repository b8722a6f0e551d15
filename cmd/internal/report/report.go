package report

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/fatih/color"

	"github.com/distrotest/distrotest/cmd/internal/term"
)

// Options configure a Log.
type Options struct {
	// Color enables ANSI colours on the terminal output.
	Color bool
	// Serial prints serial console lines from the start (nixpkgs does).
	Serial bool
	// Debug prints Debug lines.
	Debug bool
	// Now is the clock (nil: time.Now); tests pass a fake one.
	Now func() time.Time
}

// UseColor reports whether output to w should be coloured (term.Color).
func UseColor(w io.Writer) bool { return term.Color(w) }

// Log is the record of one test run. Its methods and its blocks' methods
// may be called from several goroutines.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	now    func() time.Time
	debug  bool
	serial bool
	start  time.Time
	root   *Block

	header, finished, errPrefix, serialStyle, machineStyle *color.Color

	lines []line   // everything logged, plain, for JUnit
	tests []*Block // subtests in the order they began

	bound map[string][]*Block // Bind: machine -> blocks of operations in progress
}

// line is one logged line without colour, with the subtest it belongs to.
type line struct {
	test *Block // innermost enclosing subtest, nil outside
	text string
}

// New returns a Log that writes to w.
func New(w io.Writer, opt Options) *Log {
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	l := &Log{
		w:            w,
		now:          now,
		debug:        opt.Debug,
		serial:       opt.Serial,
		header:       color.New(color.FgGreen, color.Bold),
		finished:     color.New(color.Faint),
		errPrefix:    color.New(color.FgRed, color.Bold),
		serialStyle:  color.New(color.Faint),
		machineStyle: color.New(color.FgCyan),
	}
	for _, c := range []*color.Color{l.header, l.finished, l.errPrefix, l.serialStyle, l.machineStyle} {
		if opt.Color {
			c.EnableColor()
		} else {
			c.DisableColor()
		}
	}
	l.start = now()
	l.root = &Block{log: l, start: l.start}
	return l
}

// Root is the block of the whole run: its lines are not indented.
func (l *Log) Root() *Block { return l.root }

// SetSerial turns the printing of serial console lines on or off.
func (l *Log) SetSerial(on bool) {
	l.mu.Lock()
	l.serial = on
	l.mu.Unlock()
}

// Serial logs one line machine printed on its serial console, if serial
// output is on.
func (l *Log) Serial(machine, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.serial {
		return
	}
	plain := machine + " # " + text
	l.lines = append(l.lines, line{text: plain})
	fmt.Fprintln(l.w, l.serialStyle.Sprint(plain))
}

// SerialWriter returns a writer that logs what is written to it line by
// line as machine's serial console (carriage returns dropped, a final
// partial line kept until its newline arrives).
func (l *Log) SerialWriter(machine string) io.Writer {
	return &serialWriter{log: l, machine: machine}
}

type serialWriter struct {
	mu      sync.Mutex
	log     *Log
	machine string
	partial []byte
}

func (s *serialWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.partial = append(s.partial, p...)
	for {
		i := strings.IndexByte(string(s.partial), '\n')
		if i < 0 {
			break
		}
		text := strings.ReplaceAll(string(s.partial[:i]), "\r", "")
		s.partial = s.partial[i+1:]
		s.log.Serial(s.machine, text)
	}
	if len(s.partial) > 64<<10 { // a console that never prints a newline
		s.log.Serial(s.machine, strings.ReplaceAll(string(s.partial), "\r", ""))
		s.partial = s.partial[:0]
	}
	return len(p), nil
}

// Block is one level of the log: the run, a nested step or a subtest.
type Block struct {
	log     *Log
	parent  *Block
	depth   int // indentation of the block's own lines; the root's is 0
	machine string
	message string
	test    string // subtest name, "" for other blocks
	start   time.Time

	// guarded by log.mu
	ended    bool
	elapsed  time.Duration
	failure  string
	children int
}

// Nested opens a child block, printing message (prefixed with machine when
// not empty) as its header. Call End when the step is over.
func (b *Block) Nested(machine, message string) *Block {
	return b.open(machine, message, "")
}

// Subtest opens a child block that is also a JUnit test case named name.
func (b *Block) Subtest(name string) *Block {
	return b.open("", "subtest: "+name, name)
}

func (b *Block) open(machine, message, test string) *Block {
	l := b.log
	l.mu.Lock()
	defer l.mu.Unlock()
	depth := 0
	if b.parent != nil {
		depth = b.depth + 1
	}
	c := &Block{log: l, parent: b, depth: depth, machine: machine, message: message, test: test, start: l.now()}
	b.children++
	if test != "" {
		l.tests = append(l.tests, c)
	}
	l.printLocked(b, l.header, machine, message)
	return c
}

// End closes the block and prints its duration. For a subtest, a non-empty
// failure marks the test case failed with that text (a traceback). Ending
// a block twice does nothing.
func (b *Block) End(failure string) {
	l := b.log
	if b.parent == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b.ended {
		return
	}
	b.ended = true
	b.elapsed = l.now().Sub(b.start)
	b.failure = failure
	text := fmt.Sprintf("(finished: %s, in %.2f seconds)", b.message, b.elapsed.Seconds())
	l.printLocked(b.parent, l.finished, b.machine, text)
}

// Log prints message as a line of the block.
func (b *Block) Log(machine, message string) {
	l := b.log
	l.mu.Lock()
	defer l.mu.Unlock()
	l.printLocked(b, nil, machine, message)
}

// Debug prints message like Log, only when the Log was made with Debug.
func (b *Block) Debug(machine, message string) {
	if b.log.debug {
		b.Log(machine, message)
	}
}

// Error prints every line of message prefixed with a red "!!! ", the way
// test failures stand out in nixpkgs' log.
func (b *Block) Error(message string) {
	l := b.log
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range strings.Split(message, "\n") {
		l.printLocked(b, nil, "", l.errPrefix.Sprint("!!!")+" "+s)
	}
}

// printLocked writes one entry of block b: every line of message, indented
// by b's depth, prefixed with machine, in style (nil: plain).
func (l *Log) printLocked(b *Block, style *color.Color, machine, message string) {
	indent := strings.Repeat("  ", l.childDepth(b))
	test := b.subtest()
	for _, s := range strings.Split(strings.TrimRight(message, "\n"), "\n") {
		plain := s
		if machine != "" {
			plain = machine + ": " + s
		}
		l.lines = append(l.lines, line{test: test, text: indent + stripANSI(plain)})
		out := s
		if style != nil {
			out = style.Sprint(s)
		}
		if machine != "" {
			out = l.machineStyle.Sprint(machine+":") + " " + out
		}
		fmt.Fprintln(l.w, indent+out)
	}
}

// childDepth is the indentation of lines inside b.
func (l *Log) childDepth(b *Block) int {
	if b.parent == nil {
		return 0
	}
	return b.depth + 1
}

// subtest returns the innermost subtest block containing b, or nil.
func (b *Block) subtest() *Block {
	for c := b; c != nil; c = c.parent {
		if c.test != "" {
			return c
		}
	}
	return nil
}

// stripANSI removes the escape sequences fatih/color writes, for the plain
// copy of a line a caller may have coloured itself.
func stripANSI(s string) string {
	if !strings.Contains(s, "\x1b[") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] >= '0' && s[j] <= '9' || s[j] == ';') {
				j++
			}
			if j < len(s) && s[j] == 'm' {
				i = j
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Bind makes b the block under which log records about machine nest while
// an operation on machine runs, for records whose context carries no block
// (see Handler). Call the returned function when the operation ends.
func (l *Log) Bind(machine string, b *Block) (unbind func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bound == nil {
		l.bound = map[string][]*Block{}
	}
	l.bound[machine] = append(l.bound[machine], b)
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		s := l.bound[machine]
		for i := len(s) - 1; i >= 0; i-- {
			if s[i] == b {
				l.bound[machine] = append(s[:i:i], s[i+1:]...)
				break
			}
		}
		if len(l.bound[machine]) == 0 {
			delete(l.bound, machine)
		}
	}
}

// boundBlock returns the innermost block bound to machine, or nil.
func (l *Log) boundBlock(machine string) *Block {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.bound[machine]; len(s) > 0 {
		return s[len(s)-1]
	}
	return nil
}

type blockKey struct{}

// WithBlock returns a context carrying b, so that log records made with it
// (see Handler) are nested under b.
func WithBlock(ctx context.Context, b *Block) context.Context {
	return context.WithValue(ctx, blockKey{}, b)
}

// BlockFrom returns the block WithBlock stored in ctx, or nil.
func BlockFrom(ctx context.Context) *Block {
	b, _ := ctx.Value(blockKey{}).(*Block)
	return b
}
