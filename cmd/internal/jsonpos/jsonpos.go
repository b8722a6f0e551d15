// Package jsonpos decodes JSON strictly into Go structs and reports every
// problem with the file name, line and column, and the path of the key:
//
//	driver.json:9:7: unknown key "memory" in machines[0] (known keys: name, image, ...)
//	manifest.json:3:12: disk_format: want string, not a JSON number
//
// It is for the project's JSON contracts (driver.json, manifest.json): files
// people write or generate, whose errors must say where to look.
package jsonpos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Decode decodes data, named name in errors, into v (a pointer to a struct)
// with unknown keys rejected and nothing allowed after the value.
func Decode(name string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(name, data, reflect.TypeOf(v), err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		for end < int64(len(data)) && strings.ContainsRune(" \t\r\n", rune(data[end])) {
			end++
		}
		return fmt.Errorf("%s:%s: unexpected data after the JSON document", name, Position(data, end))
	}
	return nil
}

func decodeError(name string, data []byte, t reflect.Type, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, the offending one included.
		return fmt.Errorf("%s:%s: %v", name, Position(data, max(syn.Offset-1, 0)), err)
	case errors.As(err, &typ):
		return fmt.Errorf("%s:%s: %s: want %s, not a JSON %s", name, Position(data, typ.Offset), fieldPath(t, typ.Field), typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		w := &keyWalker{dec: json.NewDecoder(bytes.NewReader(data)), data: data}
		w.value(t, "")
		if w.found {
			in := ""
			if w.where != "" {
				in = " in " + w.where
			}
			return fmt.Errorf("%s:%s: unknown key %q%s (known keys: %s)", name, Position(data, w.off), w.key, in, strings.Join(keys(w.typ), ", "))
		}
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s: empty file", name)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: unexpected end of file", name)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Position renders a byte offset in data as line:column (both from 1).
func Position(data []byte, off int64) string {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("%d:%d", line, col)
}

// fieldPath turns encoding/json's dotted field ("machines.cpus") into a
// path that marks lists ("machines[].cpus"), following type t.
func fieldPath(t reflect.Type, field string) string {
	var out []string
	for _, part := range strings.Split(field, ".") {
		t = deref(t)
		seg := part
		if t != nil && t.Kind() == reflect.Struct {
			if f, ok := fieldByTag(t, part); ok {
				t = deref(f.Type)
				if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
					seg += "[]"
					t = t.Elem()
				} else if t.Kind() == reflect.Map {
					t = t.Elem()
				}
			} else {
				t = nil
			}
		}
		out = append(out, seg)
	}
	return strings.Join(out, ".")
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// keys lists the JSON keys of struct type t, in field order.
func keys(t reflect.Type) []string {
	var out []string
	for i := 0; t != nil && i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}

// keyWalker walks a document along its Go type to find the first object
// key the type has no field for: its offset, the key, the path of its
// object ("machines[0]") and the object's type.
type keyWalker struct {
	dec   *json.Decoder
	data  []byte
	stop  bool // found, or the document is broken
	found bool
	off   int64
	key   string
	where string
	typ   reflect.Type
}

// value consumes the next value, whose Go type is t (nil: not checked).
func (w *keyWalker) value(t reflect.Type, path string) {
	t = deref(t)
	tok, err := w.dec.Token()
	if err != nil {
		w.stop = true
		return
	}
	d, isDelim := tok.(json.Delim)
	if !isDelim {
		return // a scalar, consumed
	}
	switch d {
	case '{':
		for !w.stop && w.dec.More() {
			start := w.dec.InputOffset()
			ktok, err := w.dec.Token()
			k, isKey := ktok.(string)
			if err != nil || !isKey {
				w.stop = true
				return
			}
			var vt reflect.Type
			if t != nil {
				switch t.Kind() {
				case reflect.Struct:
					f, known := fieldByTag(t, k)
					if !known {
						w.stop, w.found = true, true
						w.off, w.key, w.where, w.typ = keyOffset(w.data, start), k, path, t
						return
					}
					vt = f.Type
				case reflect.Map:
					vt = t.Elem()
				}
			}
			w.value(vt, join(path, k))
		}
	case '[':
		for i := 0; !w.stop && w.dec.More(); i++ {
			var et reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				et = t.Elem()
			}
			w.value(et, fmt.Sprintf("%s[%d]", path, i))
		}
	}
	if !w.stop {
		if _, err := w.dec.Token(); err != nil { // the closing delimiter
			w.stop = true
		}
	}
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// keyOffset returns the offset of the key token that starts at or after
// start (InputOffset before a key points at the preceding delimiter).
func keyOffset(data []byte, start int64) int64 {
	i := start
	for i < int64(len(data)) && data[i] != '"' {
		i++
	}
	return i
}
