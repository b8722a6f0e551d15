package pybridge

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/qmp"
	"github.com/distrotest/distrotest/cmd/internal/report"
)

//go:embed shim/distrotest_driver.py shim/distrotest_driver.pyi
var shimFS embed.FS

const (
	shimName = "distrotest_driver.py"
	stubName = "distrotest_driver.pyi"
)

// Shim returns the Python driver the script runs in.
func Shim() []byte { return mustRead(shimName) }

// Stub returns the type stub of the script's globals, for editors.
func Stub() []byte { return mustRead(stubName) }

func mustRead(name string) []byte {
	b, err := shimFS.ReadFile("shim/" + name)
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	return b
}

// EnvPython names the environment variable that selects the Python
// interpreter (default: python3 from PATH).
const EnvPython = "DISTROTEST_PYTHON"

// ProtocolVersion is the version of the JSON-lines protocol; the shim sends
// it in "hello".
const ProtocolVersion = 1

// Machine is what the bridge needs from a machine; *machine.Machine has it.
type Machine interface {
	Name() string
	// StateDir is the machine's private state directory (its disk).
	StateDir() string
	Start(ctx context.Context) error
	WaitForShell(ctx context.Context) error
	// IsUp reports whether QEMU runs and the shell answered; IsRunning
	// only whether QEMU runs (nixpkgs' booted).
	IsUp() bool
	IsRunning() bool
	Execute(ctx context.Context, command string, timeout time.Duration) (status int, stdout []byte, err error)
	Shutdown(ctx context.Context) error
	Crash(ctx context.Context) error
	WaitForShutdown(ctx context.Context) error
	ConsoleLog() string
	Screenshot(ctx context.Context, pngPath string) error
	SendMonitorCommand(ctx context.Context, command string) (string, error)
	SendKey(ctx context.Context, key string) error
	SendConsole(ctx context.Context, chars string) error
	ForwardPort(ctx context.Context, hostPort, guestPort int) error
	CopyFromHost(ctx context.Context, src, dst string) error
	CopyFromMachine(ctx context.Context, src, dstDir string) error
	SetLinks(ctx context.Context, up bool) error
	// SetAllowReboot chooses whether a guest reboot keeps QEMU running
	// (true) or ends it (false, nixpkgs' default) from the next start on.
	SetAllowReboot(allow bool)
	// Disconnect makes the next call that needs the shell wait for the
	// shell of the next boot (starting QEMU again if it ended).
	Disconnect()
	// QMP runs a QMP command; an error reply from QEMU is a *qmp.Error.
	QMP(ctx context.Context, command string, args, reply any) error
	// NextQMPEvent returns the oldest QMP event not returned yet, waiting
	// until ctx ends for one; ok is false when none came.
	NextQMPEvent(ctx context.Context) (ev qmp.Event, ok bool, err error)
}

// VLAN is what the bridge needs from a VLAN switch; *vlan.Switch has it.
type VLAN interface {
	ID() int
	SetPartition(groups [][]string) error
	Heal()
}

// Config describes one script run.
type Config struct {
	// Python is the interpreter; "" means python3 (the CLI passes
	// $DISTROTEST_PYTHON).
	Python string
	// Script is the test script's path.
	Script string
	// Machines and VLANs are what the script drives; names must be unique.
	Machines []Machine
	VLANs    []VLAN
	// OutDir receives screenshots and copies from machines.
	OutDir string
	// SharedDirs maps the machines that have nixpkgs' /tmp/shared to the
	// host side of it (the script's machine.shared_dir); copy_from_host and
	// copy_from_machine go through it as in nixpkgs.
	SharedDirs map[string]string
	// Interactive starts a Python shell with the script's globals instead
	// of running the script; machines start only when asked.
	Interactive bool
	// Log is the run's log (required).
	Log *report.Log
	// Stdin, Stdout and Stderr are Python's (nil: the process's own).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Env is added to Python's environment.
	Env []string
	// Logger receives protocol debugging (nil discards).
	Logger *slog.Logger
	// CreateMachine, when set, makes a machine at the script's request
	// (nixpkgs' create_machine); the runner that makes it also cleans it
	// up. Without it, create_machine fails with a MachineError.
	CreateMachine func(ctx context.Context, spec MachineSpec) (CreatedMachine, error)
}

// MachineSpec is a machine the script asks for with create_machine. Zero
// fields take the model machine's settings.
type MachineSpec struct {
	// Name is the new machine's name (unique in the run).
	Name string `json:"name"`
	// Image is a prepared image directory; "" means the model's image.
	Image string `json:"image"`
	// Like names the model machine, whose image, VLANs, memory and CPUs
	// are the defaults; "" means the test's first machine by name.
	Like string `json:"like"`
	// VLANs, when not nil, replaces the model's VLANs.
	VLANs *[]int `json:"vlans"`
	// MemorySize (MiB) and CPUs replace the model's when > 0.
	MemorySize int `json:"memory_size"`
	CPUs       int `json:"cpus"`
	// KeepState keeps the machine's disk in the cache between runs
	// (nixpkgs' keep_machine_state).
	KeepState bool `json:"keep_machine_state"`
}

// CreatedMachine is a machine made by Config.CreateMachine, with the host
// side of its /tmp/shared ("" when it has none).
type CreatedMachine struct {
	Machine   Machine
	SharedDir string
}

// ScriptError is a failed test script: a syntax error or an exception. The
// shim reports it as JSON with these keys (_report_exception in the shim),
// from `check` on stdout and through the "fail" request.
type ScriptError struct {
	Kind      string   `json:"kind"`      // "syntax" or "exception" ("io" from check: the script could not be read)
	Type      string   `json:"type"`      // the Python exception's class
	Message   string   `json:"message"`   // its message
	File      string   `json:"file"`      // where it happened in the script ("" if unknown)
	Line      int      `json:"line"`      //
	Source    string   `json:"source"`    // that line of the script
	Traceback []string `json:"traceback"` // the report, limited to the script's frames
}

func (e *ScriptError) Error() string {
	loc := ""
	if e.File != "" {
		loc = fmt.Sprintf(" %s:%d", e.File, e.Line)
	}
	msg, _, _ := strings.Cut(strings.TrimSpace(e.Message), "\n")
	if e.Kind == "syntax" {
		return fmt.Sprintf("%s in%s: %s", strings.ToLower(splitCamel(e.Type)), loc, msg)
	}
	if loc != "" {
		loc = " at" + loc
	}
	if e.Source != "" {
		return fmt.Sprintf("test script failed%s (%s): %s: %s", loc, e.Source, e.Type, msg)
	}
	return fmt.Sprintf("test script failed%s: %s: %s", loc, e.Type, msg)
}

// Report returns the multi-line report (traceback) of the failure.
func (e *ScriptError) Report() string { return strings.Join(e.Traceback, "\n") }

var camel = regexp.MustCompile(`([a-z])([A-Z])`)

// splitCamel turns "SyntaxError" into "Syntax Error".
func splitCamel(s string) string { return camel.ReplaceAllString(s, "$1 $2") }

// python returns the interpreter to use.
func python(configured string) string {
	if configured != "" {
		return configured
	}
	return "python3"
}

// writeShim writes the shim and its stub into a new temporary directory.
func writeShim() (dir string, err error) {
	dir, err = os.MkdirTemp("", "distrotest-py-")
	if err != nil {
		return "", fmt.Errorf("writing the python driver: %w", err)
	}
	for _, name := range []string{shimName, stubName} {
		if err := os.WriteFile(filepath.Join(dir, name), mustRead(name), 0o644); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("writing the python driver: %w", err)
		}
	}
	return dir, nil
}

func pythonErr(py string, err error) error {
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("starting python: %w (install python3 or set %s)", err, EnvPython)
	}
	return fmt.Errorf("starting python %s: %w", py, err)
}

// Check compiles the script without running anything. A syntax error comes
// back as a *ScriptError with its file and line.
func Check(ctx context.Context, py, script string) error {
	py = python(py)
	dir, err := writeShim()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, py, "-B", filepath.Join(dir, shimName), "check", script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if err == nil {
		return nil
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 {
		var rep ScriptError
		if json.Unmarshal(stdout.Bytes(), &rep) == nil {
			if rep.Kind == "io" {
				return fmt.Errorf("reading test script: %s", rep.Message)
			}
			return &rep
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if errors.As(err, &exit) {
		return fmt.Errorf("checking test script %s with %s: %w: %s", script, py, err, strings.TrimSpace(stderr.String()))
	}
	return pythonErr(py, err)
}

// Run runs the script (or the interactive shell) and returns nil when it
// passed, a *ScriptError when it failed, the context's cause when the
// context ended first, or another error when Python could not run. The
// Python process (and its process group, unless interactive) is gone when
// Run returns.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		return errors.New("running test script: no log")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	script, err := filepath.Abs(cfg.Script)
	if err != nil {
		return fmt.Errorf("running test script: %w", err)
	}
	s := &session{
		cfg:      cfg,
		script:   script,
		log:      cfg.Log,
		logger:   logger,
		machines: map[string]Machine{},
		vlans:    map[int]VLAN{},
		blocks:   map[int]*report.Block{},
		inflight: map[int64]context.CancelFunc{},
		created:  map[string]string{},
	}
	for _, m := range cfg.Machines {
		if _, dup := s.machines[m.Name()]; dup {
			return fmt.Errorf("running test script: two machines named %q", m.Name())
		}
		s.machines[m.Name()] = m
		// As in nixpkgs, a guest reboot ends QEMU unless the script
		// started the machine with start(allow_reboot=True).
		m.SetAllowReboot(false)
	}
	for _, v := range cfg.VLANs {
		s.vlans[v.ID()] = v
	}

	py := python(cfg.Python)
	dir, err := writeShim()
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("running test script: socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "distrotest-rpc")
	theirs := os.NewFile(uintptr(fds[1]), "distrotest-rpc-python")
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return fmt.Errorf("running test script: %w", err)
	}
	defer conn.Close()
	s.conn = conn

	cmd := exec.Command(py, "-u", "-B", filepath.Join(dir, shimName), "run")
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	if cmd.Stdin == nil {
		cmd.Stdin = os.Stdin
		if !cfg.Interactive {
			cmd.Stdin = nil // /dev/null: a script must not wait for input
		}
	}
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stdout
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	cmd.Env = append(cmd.Env, cfg.Env...)
	cmd.SysProcAttr = sysProcAttr(cfg.Interactive)
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		return pythonErr(py, err)
	}
	logger.Debug("python started", "python", py, "pid", cmd.Process.Pid)

	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	s.ctx = sctx
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.serve()
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var waitErr error
	select {
	case waitErr = <-waited:
	case <-ctx.Done():
		logger.Debug("killing python", "cause", context.Cause(ctx))
		kill(cmd, cfg.Interactive)
		waitErr = <-waited
	}
	conn.Close()
	<-served
	scancel()
	s.waitHandlers(10 * time.Second)

	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	s.mu.Lock()
	failure := s.failure
	s.mu.Unlock()
	if failure != nil {
		return failure
	}
	if waitErr != nil {
		var exit *exec.ExitError
		if errors.As(waitErr, &exit) && exit.ExitCode() == 3 {
			return fmt.Errorf("running test script: the python driver lost its connection to the runner")
		}
		return fmt.Errorf("running test script: python driver: %w (its error is above)", waitErr)
	}
	return nil
}

// serve reads requests until the connection closes.
func (s *session) serve() {
	r := bufio.NewReaderSize(s.conn, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var req request
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if derr := dec.Decode(&req); derr != nil {
				s.logger.Warn("bad request from python", "err", derr, "line", string(line))
			} else {
				s.dispatch(req)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.logger.Debug("reading from python", "err", err)
			}
			return
		}
	}
}

// waitHandlers waits for running requests, at most d.
func (s *session) waitHandlers(d time.Duration) {
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		s.logger.Warn("requests still running after the script ended", "waited", d)
	}
}

type session struct {
	cfg      Config
	script   string
	log      *report.Log
	logger   *slog.Logger
	machines map[string]Machine
	vlans    map[int]VLAN
	conn     net.Conn
	ctx      context.Context // ends when the script has ended
	wmu      sync.Mutex      // serialises writes to conn
	wg       sync.WaitGroup  // running requests

	mu        sync.Mutex // guards machines after Run started, and the fields below
	blocks    map[int]*report.Block
	nextBlock int
	inflight  map[int64]context.CancelFunc
	failure   *ScriptError
	created   map[string]string // shared dirs of machines made by create_machine
}

// machine returns the machine called name.
func (s *session) machine(name string) (Machine, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.machines[name]
	return m, ok
}
