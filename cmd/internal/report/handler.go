package report

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// MachineKey is the slog attribute that names the machine a record is
// about; Handler turns it into the line's prefix.
const MachineKey = "machine"

// Handler returns a slog.Handler that prints records of at least level as
// log lines: nested under the block of the record's context (WithBlock),
// at the top otherwise; prefixed with the "machine" attribute; other
// attributes follow as key=value. Warnings and errors say so.
func (l *Log) Handler(level slog.Leveler) slog.Handler {
	return &handler{log: l, level: level}
}

type handler struct {
	log     *Log
	level   slog.Leveler
	machine string
	attrs   []slog.Attr
	group   string
}

func (h *handler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	machine := h.machine
	var b strings.Builder
	if r.Level >= slog.LevelWarn {
		b.WriteString(strings.ToLower(r.Level.String()))
		b.WriteString(": ")
	}
	b.WriteString(r.Message)
	add := func(a slog.Attr) {
		if a.Key == MachineKey && h.group == "" {
			machine = a.Value.String()
			return
		}
		if a.Equal(slog.Attr{}) {
			return
		}
		key := a.Key
		if h.group != "" {
			key = h.group + "." + key
		}
		fmt.Fprintf(&b, " %s=%s", key, quoteIfNeeded(a.Value.Resolve().String()))
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		add(a)
		return true
	})
	blk := BlockFrom(ctx)
	if blk == nil && machine != "" {
		blk = h.log.boundBlock(machine)
	}
	if blk == nil {
		blk = h.log.Root()
	}
	blk.Log(machine, b.String())
	return nil
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		if a.Key == MachineKey && h.group == "" {
			c.machine = a.Value.String()
			continue
		}
		c.attrs = append(c.attrs, a)
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}
