package pybridge

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/distrotest/distrotest/cmd/internal/qmp"
	"github.com/distrotest/distrotest/cmd/internal/report"
)

// request is one line from Python.
type request struct {
	ID     int64           `json:"id"`
	Method string          `json:"method"`
	Block  int             `json:"block"`
	Params json.RawMessage `json:"params"`
}

// response is one line to Python.
type response struct {
	ID     int64     `json:"id"`
	Result any       `json:"result"`
	Error  *rpcError `json:"error,omitempty"`
}

type rpcError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

// usageError is a request the shim should not have made (unknown machine,
// bad parameters): a ValueError in Python.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// handler serves one method. blk is the log block of the calling thread.
type handler func(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error)

var handlers map[string]handler

func init() {
	handlers = map[string]handler{
		"hello":         hello,
		"fail":          fail,
		"log":           logLine,
		"log_error":     logError,
		"log_serial":    logSerial,
		"serial":        serial,
		"nested_begin":  nestedBegin,
		"subtest_begin": subtestBegin,
		"block_end":     blockEnd,
		"partition":     partition,
		"heal":          heal,

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
}

// dispatch runs req in its own goroutine and replies when it is done.
func (s *session) dispatch(req request) {
	if req.Method == "cancel" {
		var p struct {
			ID int64 `json:"id"`
		}
		if json.Unmarshal(req.Params, &p) == nil {
			s.mu.Lock()
			cancel := s.inflight[p.ID]
			s.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		}
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.mu.Lock()
	if req.ID != 0 {
		s.inflight[req.ID] = cancel
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.inflight, req.ID)
			s.mu.Unlock()
			cancel()
		}()
		res, err := s.handle(ctx, req)
		if req.ID != 0 {
			s.reply(req.ID, res, err)
		}
	}()
}

// handle runs the handler of req, turning a panic into an error so that a
// bug in one request does not take the run (and its cleanup) down.
func (s *session) handle(ctx context.Context, req request) (res any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("panic in request", "method", req.Method, "panic", r, "stack", string(debug.Stack()))
			res, err = nil, fmt.Errorf("internal error in %s: %v", req.Method, r)
		}
	}()
	h, ok := handlers[req.Method]
	if !ok {
		return nil, usagef("unknown method %q", req.Method)
	}
	blk := s.block(req.Block)
	ctx = report.WithBlock(ctx, blk)
	start := time.Now()
	res, err = h(ctx, s, blk, req.Params)
	s.logger.Debug("request", "method", req.Method, "took", time.Since(start), "err", err)
	return res, err
}

func (s *session) reply(id int64, res any, err error) {
	resp := response{ID: id, Result: res}
	if resp.Result == nil {
		resp.Result = struct{}{}
	}
	if err != nil {
		resp.Result = nil
		kind := "machine"
		var u usageError
		switch {
		case errors.As(err, &u):
			kind = "usage"
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			kind = "canceled"
		}
		resp.Error = &rpcError{Kind: kind, Message: err.Error()}
	}
	data, merr := json.Marshal(resp)
	if merr != nil {
		data, _ = json.Marshal(response{ID: id, Error: &rpcError{Kind: "machine", Message: "encoding the reply: " + merr.Error()}})
	}
	data = append(data, '\n')
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if _, err := s.conn.Write(data); err != nil {
		s.logger.Debug("writing to python", "err", err)
	}
}

// block returns the open block with id, or the root.
func (s *session) block(id int) *report.Block {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.blocks[id]; ok {
		return b
	}
	return s.log.Root()
}

func (s *session) addBlock(b *report.Block) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextBlock++
	s.blocks[s.nextBlock] = b
	return s.nextBlock
}

// decode decodes params into p, rejecting unknown fields: the shim and the
// handlers are one program and must agree exactly.
func decode(params json.RawMessage, p any) error {
	if len(params) == 0 {
		params = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return usagef("bad parameters: %v", err)
	}
	return nil
}

// onMachine adapts a function of one machine: params are P plus "machine".
// While it runs, the machine's own log records nest under the caller's
// block.
func onMachine[P any](f func(ctx context.Context, m Machine, p P) (any, error)) handler {
	return func(ctx context.Context, s *session, blk *report.Block, params json.RawMessage) (any, error) {
		var name struct {
			Machine string `json:"machine"`
		}
		if err := json.Unmarshal(params, &name); err != nil {
			return nil, usagef("bad parameters: %v", err)
		}
		m, ok := s.machines[name.Machine]
		if !ok {
			return nil, usagef("no machine named %q", name.Machine)
		}
		var p P
		if err := decode(stripKey(params, "machine"), &p); err != nil {
			return nil, err
		}
		defer s.log.Bind(m.Name(), blk)()
		return f(ctx, m, p)
	}
}

func machineAction(f func(Machine, context.Context) error) handler {
	return onMachine(func(ctx context.Context, m Machine, _ struct{}) (any, error) {
		return nil, f(m, ctx)
	})
}

// stripKey returns the JSON object params without key.
func stripKey(params json.RawMessage, key string) json.RawMessage {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(params, &obj); err != nil {
		return params
	}
	delete(obj, key)
	out, err := json.Marshal(obj)
	if err != nil {
		return params
	}
	return out
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
	var p struct {
		Kind      string   `json:"kind"`
		Type      string   `json:"type"`
		Message   string   `json:"message"`
		File      string   `json:"file"`
		Line      int      `json:"line"`
		Source    string   `json:"source"`
		Traceback []string `json:"traceback"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	e := &ScriptError{Kind: p.Kind, Type: p.Type, Message: p.Message, File: p.File, Line: p.Line, Source: p.Source, Traceback: p.Traceback}
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

// consoleCursor marks how far a reader got in a machine's console log: a
// byte offset and the bytes just before it, so that a log that started
// over (the machine was restarted) is noticed.
type consoleCursor struct {
	Off  int    `json:"off"`
	Mark string `json:"mark"` // base64
}

const cursorMark = 32

func makeCursor(log string, off int) *consoleCursor {
	return &consoleCursor{Off: off, Mark: base64.StdEncoding.EncodeToString([]byte(log[max(0, off-cursorMark):off]))}
}

// valid reports whether c still points into log.
func (c *consoleCursor) valid(log string) bool {
	mark, err := base64.StdEncoding.DecodeString(c.Mark)
	if err != nil || c.Off < 0 || c.Off > len(log) || len(mark) > c.Off {
		return false
	}
	return log[c.Off-len(mark):c.Off] == string(mark)
}

// consolePoll is how often console_read looks for new output.
const consolePoll = 50 * time.Millisecond

// consoleRead returns the complete lines of the console log after the
// cursor, waiting up to Wait seconds for at least one.
func consoleRead(ctx context.Context, m Machine, p struct {
	Cursor *consoleCursor `json:"cursor"`
	Wait   float64        `json:"wait"`
}) (any, error) {
	deadline := time.Now().Add(time.Duration(p.Wait * float64(time.Second)))
	reset := false
	for {
		log := m.ConsoleLog()
		off := 0
		if p.Cursor != nil {
			if p.Cursor.valid(log) {
				off = p.Cursor.Off
			} else {
				reset = true
				p.Cursor = nil
			}
		}
		if i := strings.LastIndexByte(log[off:], '\n'); i >= 0 || !time.Now().Before(deadline) {
			end := off + i + 1
			if i < 0 {
				end = off
			}
			return map[string]any{"text": log[off:end], "cursor": makeCursor(log, end), "reset": reset}, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(consolePoll, time.Until(deadline))):
		}
	}
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
