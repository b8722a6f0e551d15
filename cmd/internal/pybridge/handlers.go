package pybridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/qmp"
	"github.com/distrotest/distrotest/cmd/internal/report"
)

// handlers maps every RPC method the shim calls to its handler.
var handlers = map[string]handler{
	"hello":          hello,
	"fail":           fail,
	"log":            logLine,
	"log_error":      logError,
	"log_serial":     logSerial,
	"serial":         serial,
	"nested_begin":   nestedBegin,
	"subtest_begin":  subtestBegin,
	"block_end":      blockEnd,
	"partition":      partition,
	"heal":           heal,
	"create_machine": createMachine,

	"is_up": onMachine(func(ctx context.Context, m Machine, _ struct{}) (any, error) {
		return map[string]bool{"up": m.IsUp()}, nil
	}),
	"state": onMachine(func(ctx context.Context, m Machine, _ struct{}) (any, error) {
		return map[string]bool{"booted": m.IsRunning(), "connected": m.IsUp()}, nil
	}),
	"qmp":       onMachine(qmpCommand),
	"qmp_event": onMachine(qmpEvent),
	"start": onMachine(func(ctx context.Context, m Machine, p struct {
		AllowReboot bool `json:"allow_reboot"`
	}) (any, error) {
		m.SetAllowReboot(p.AllowReboot)
		return nil, m.Start(ctx)
	}),
	"disconnect": onMachine(func(ctx context.Context, m Machine, _ struct{}) (any, error) {
		m.Disconnect()
		return nil, nil
	}),
	"wait_for_shell":    machineAction(Machine.WaitForShell),
	"shutdown":          machineAction(Machine.Shutdown),
	"crash":             machineAction(Machine.Crash),
	"wait_for_shutdown": machineAction(Machine.WaitForShutdown),
	"console_log": onMachine(func(ctx context.Context, m Machine, _ struct{}) (any, error) {
		return map[string]string{"text": m.ConsoleLog()}, nil
	}),
	"console_read": onMachine(consoleRead),
	"send_console": onMachine(func(ctx context.Context, m Machine, p struct {
		Chars string `json:"chars"`
	}) (any, error) {
		return nil, m.SendConsole(ctx, p.Chars)
	}),
	"copy_from_host": onMachine(func(ctx context.Context, m Machine, p struct {
		Source string `json:"source"`
		Target string `json:"target"`
	}) (any, error) {
		return nil, m.CopyFromHost(ctx, p.Source, p.Target)
	}),
	"copy_from_machine": onMachine(func(ctx context.Context, m Machine, p struct {
		Source    string `json:"source"`
		TargetDir string `json:"target_dir"`
	}) (any, error) {
		return nil, m.CopyFromMachine(ctx, p.Source, p.TargetDir)
	}),
	"send_monitor_command": onMachine(func(ctx context.Context, m Machine, p struct {
		Command string `json:"command"`
	}) (any, error) {
		out, err := m.SendMonitorCommand(ctx, p.Command)
		return map[string]string{"output": out}, err
	}),
	"send_key": onMachine(func(ctx context.Context, m Machine, p struct {
		Key string `json:"key"`
	}) (any, error) {
		return nil, m.SendKey(ctx, p.Key)
	}),
	"forward_port": onMachine(func(ctx context.Context, m Machine, p struct {
		HostPort  int `json:"host_port"`
		GuestPort int `json:"guest_port"`
	}) (any, error) {
		return nil, m.ForwardPort(ctx, p.HostPort, p.GuestPort)
	}),
	"screenshot": onMachine(func(ctx context.Context, m Machine, p struct {
		Path string `json:"path"`
	}) (any, error) {
		return nil, m.Screenshot(ctx, p.Path)
	}),
	"set_links": onMachine(func(ctx context.Context, m Machine, p struct {
		Up bool `json:"up"`
	}) (any, error) {
		return nil, m.SetLinks(ctx, p.Up)
	}),
	// "execute" needs the session (check_output=False runs in the
	// background): see execute.
	"execute": execute,
}

func hello(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		Version int `json:"version"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	if p.Version != ProtocolVersion {
		return nil, usagef("the python driver speaks protocol %d, the runner %d", p.Version, ProtocolVersion)
	}
	names := make([]string, 0, len(s.machines))
	for n := range s.machines {
		names = append(names, n)
	}
	sort.Strings(names)
	vlans := make([]int, 0, len(s.vlans))
	for v := range s.vlans {
		vlans = append(vlans, v)
	}
	sort.Ints(vlans)
	info := map[string]any{}
	for _, n := range names {
		info[n] = map[string]string{"state_dir": s.machines[n].StateDir(), "shared_dir": s.cfg.SharedDirs[n]}
	}
	return map[string]any{
		"machines":     names,
		"machine_info": info,
		"vlans":        vlans,
		"out_dir":      s.cfg.OutDir,
		"test_script":  s.script,
		"interactive":  s.cfg.Interactive,
	}, nil
}

func fail(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	e := &ScriptError{}
	if err := decode(params, e); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.failure == nil {
		s.failure = e
	}
	s.mu.Unlock()
	s.log.Root().Error(e.Report())
	return nil, nil
}

func logLine(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		Machine string `json:"machine"`
		Message string `json:"message"`
		Level   string `json:"level"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	switch p.Level {
	case "debug":
		blk.Debug(p.Machine, p.Message)
	case "warning", "error":
		blk.Log(p.Machine, p.Level+": "+p.Message)
	default:
		blk.Log(p.Machine, p.Message)
	}
	return nil, nil
}

func logError(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		Message string `json:"message"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	blk.Error(p.Message)
	return nil, nil
}

func logSerial(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		Machine string `json:"machine"`
		Message string `json:"message"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	s.log.Serial(p.Machine, p.Message)
	return nil, nil
}

func serial(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		On bool `json:"on"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	s.log.SetSerial(p.On)
	return nil, nil
}

func nestedBegin(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		Machine string `json:"machine"`
		Message string `json:"message"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	return map[string]int{"block": s.addBlock(blk.Nested(p.Machine, p.Message))}, nil
}

func subtestBegin(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	return map[string]int{"block": s.addBlock(blk.Subtest(p.Name))}, nil
}

func blockEnd(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		Block   int    `json:"block"`
		Failure string `json:"failure"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	s.mu.Lock()
	b, ok := s.blocks[p.Block]
	delete(s.blocks, p.Block)
	s.mu.Unlock()
	if !ok {
		return nil, usagef("no open block %d", p.Block)
	}
	b.End(p.Failure)
	return nil, nil
}

func (s *session) vlan(id int) (VLAN, error) {
	v, ok := s.vlans[id]
	if !ok {
		return nil, usagef("no vlan %d", id)
	}
	return v, nil
}

func partition(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		VLAN   int        `json:"vlan"`
		Groups [][]string `json:"groups"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	v, err := s.vlan(p.VLAN)
	if err != nil {
		return nil, err
	}
	return nil, v.SetPartition(p.Groups)
}

func heal(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var p struct {
		VLAN int `json:"vlan"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	v, err := s.vlan(p.VLAN)
	if err != nil {
		return nil, err
	}
	v.Heal()
	return nil, nil
}

// seconds converts a Python timeout (seconds, None: no limit) to a
// duration (0: no limit).
func seconds(f *float64) time.Duration {
	if f == nil || *f <= 0 {
		return 0
	}
	return time.Duration(*f * float64(time.Second))
}

type executeResult struct {
	Status int    `json:"status"`
	Output string `json:"output"`
}

func execute(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	return onMachine(func(ctx context.Context, m Machine, p struct {
		Command string   `json:"command"`
		Timeout *float64 `json:"timeout"`
		Wait    bool     `json:"wait"`
	}) (any, error) {
		if !p.Wait {
			// check_output=False: send the command and return at once, as
			// nixpkgs does; later commands queue behind it in the shell.
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if _, _, err := m.Execute(s.ctx, p.Command, seconds(p.Timeout)); err != nil {
					blk.Debug(m.Name(), fmt.Sprintf("background command %q: %v", p.Command, err))
				}
			}()
			return executeResult{Status: -2}, nil
		}
		status, out, err := m.Execute(ctx, p.Command, seconds(p.Timeout))
		if err != nil {
			return nil, err
		}
		return executeResult{Status: status, Output: string(out)}, nil
	})(ctx, s, blk, params)
}

// qmpCommand runs a QMP command for the script's qmp_client.send and
// answers with QEMU's reply message: {"return": ...}, or {"error": {"class",
// "desc"}} when QEMU refused it (the shim raises QMPAPIError).
func qmpCommand(ctx context.Context, m Machine, p struct {
	Command   string         `json:"command"`
	Arguments map[string]any `json:"arguments"`
}) (any, error) {
	if p.Command == "" {
		return nil, usagef("qmp: empty command")
	}
	var args any
	if p.Arguments != nil {
		args = p.Arguments
	}
	var ret json.RawMessage
	err := m.QMP(ctx, p.Command, args, &ret)
	var qerr *qmp.Error
	if errors.As(err, &qerr) {
		return map[string]any{"error": map[string]string{"class": qerr.Class, "desc": qerr.Desc}}, nil
	}
	if err != nil {
		return nil, err
	}
	if len(ret) == 0 {
		ret = json.RawMessage("{}")
	}
	return map[string]any{"return": ret}, nil
}

// qmpEvent returns the machine's next QMP event as QEMU sent it ({"event",
// "data", "timestamp": {"seconds", "microseconds"}}), waiting up to Wait
// seconds; {"event": null} when none came.
func qmpEvent(ctx context.Context, m Machine, p struct {
	Wait float64 `json:"wait"`
}) (any, error) {
	wctx, cancel := context.WithTimeout(ctx, max(0, time.Duration(p.Wait*float64(time.Second))))
	defer cancel()
	ev, ok, err := m.NextQMPEvent(wctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return map[string]any{"event": nil}, nil
	}
	out := map[string]any{
		"event": ev.Name,
		"timestamp": map[string]int64{
			"seconds":      ev.Time.Unix(),
			"microseconds": int64(ev.Time.Nanosecond() / 1000),
		},
	}
	if len(ev.Data) > 0 {
		out["data"] = ev.Data
	}
	return map[string]any{"event": out}, nil
}

// createMachine makes a machine for the script's create_machine through
// Config.CreateMachine and answers with what the shim's Machine needs.
func createMachine(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
	var spec MachineSpec
	if err := decode(params, &spec); err != nil {
		return nil, err
	}
	if s.cfg.CreateMachine == nil {
		return nil, errors.New("create_machine: this runner cannot create machines")
	}
	if spec.Like != "" {
		if _, ok := s.machine(spec.Like); !ok {
			return nil, fmt.Errorf("create_machine: no machine named %q to take the image from", spec.Like)
		}
	}
	if _, dup := s.machine(spec.Name); dup {
		return nil, fmt.Errorf("create_machine: a machine named %q exists already; pass another name=", spec.Name)
	}
	c, err := s.cfg.CreateMachine(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("create_machine %s: %w", spec.Name, err)
	}
	m := c.Machine
	s.mu.Lock()
	_, dup := s.machines[m.Name()]
	if !dup {
		s.machines[m.Name()] = m
		s.created[m.Name()] = c.SharedDir
	}
	s.mu.Unlock()
	if dup {
		return nil, fmt.Errorf("create_machine: a machine named %q exists already; pass another name=", m.Name())
	}
	m.SetAllowReboot(false) // as for the test's machines: nixpkgs' default
	return map[string]string{"name": m.Name(), "state_dir": m.StateDir(), "shared_dir": c.SharedDir}, nil
}
