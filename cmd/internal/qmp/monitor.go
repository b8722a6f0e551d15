package qmp

import (
	"context"
	"encoding/json"
	"fmt"

	goqmp "github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/raw"
)

// Monitor is go-qemu's qmp.Monitor over a Client, with every command
// bounded by the context it was made with. Its replies have no size limit
// (go-qemu's own socket monitor gives up on replies over 64 KiB).
type Monitor struct {
	c   *Client
	ctx context.Context
}

var _ goqmp.Monitor = Monitor{}

// Monitor returns the connection as a go-qemu qmp.Monitor whose commands
// end with ctx.
func (c *Client) Monitor(ctx context.Context) Monitor { return Monitor{c: c, ctx: ctx} }

// Raw returns go-qemu's generated QMP commands over the connection, each
// bounded by ctx: c.Raw(ctx).SetLink("nic1", false).
func (c *Client) Raw(ctx context.Context) *raw.Monitor { return raw.NewMonitor(c.Monitor(ctx)) }

// Connect does nothing: Dial connected the client and negotiated the
// capabilities. It fails once the connection has ended.
func (m Monitor) Connect() error {
	if err := m.c.Err(); err != nil {
		return err
	}
	return nil
}

// Disconnect closes the client's connection (for every Monitor of it).
func (m Monitor) Disconnect() error { return m.c.Close() }

// Run sends one command, {"execute": NAME, "arguments": {...}}, and returns
// QEMU's reply, {"return": ...}. An error reply is returned as *Error.
func (m Monitor) Run(command []byte) ([]byte, error) {
	var cmd struct {
		Execute   string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(command, &cmd); err != nil {
		return nil, fmt.Errorf("qmp: decoding the command %.100q: %w", command, err)
	}
	if cmd.Execute == "" {
		return nil, fmt.Errorf("qmp: command %.100q has no \"execute\"", command)
	}
	var args any
	if len(cmd.Arguments) > 0 && string(cmd.Arguments) != "null" {
		args = cmd.Arguments
	}
	var ret json.RawMessage
	if err := m.c.Execute(m.ctx, cmd.Execute, args, &ret); err != nil {
		return nil, err
	}
	if len(ret) == 0 {
		ret = json.RawMessage("{}")
	}
	return json.Marshal(struct {
		Return json.RawMessage `json:"return"`
	}{ret})
}

// Events delivers the client's events as go-qemu events until ctx or the
// Monitor's context ends or the connection does. The client has one event
// stream: concurrent consumers share it.
func (m Monitor) Events(ctx context.Context) (<-chan goqmp.Event, error) {
	if err := m.c.Err(); err != nil {
		return nil, err
	}
	out := make(chan goqmp.Event)
	go func() {
		defer close(out)
		for {
			select {
			case ev, ok := <-m.c.Events():
				if !ok {
					return
				}
				g := goqmp.Event{Event: ev.Name}
				if len(ev.Data) > 0 {
					_ = json.Unmarshal(ev.Data, &g.Data)
				}
				if !ev.Time.IsZero() {
					g.Timestamp.Seconds = ev.Time.Unix()
					g.Timestamp.Microseconds = int64(ev.Time.Nanosecond() / 1000)
				}
				select {
				case out <- g:
				case <-ctx.Done():
					return
				case <-m.ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			case <-m.ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
