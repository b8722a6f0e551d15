package pybridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

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
		m, ok := s.machine(name.Machine)
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
