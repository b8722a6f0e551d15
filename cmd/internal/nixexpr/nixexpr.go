package nixexpr

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Import is the expression `import PATH` where PATH is a relative path
// literal such as "./debian.nix". Paths must start with "./" or "../" and use
// only the characters Nix allows in path literals (letters, digits, ".", "_",
// "-", "+" and "/").
type Import string

// identifier matches the names Nix accepts unquoted on the left of "=".
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_'-]*$`)

// pathLiteral matches a relative Nix path literal.
var pathLiteral = regexp.MustCompile(`^\.\.?(/[A-Za-z0-9._+-]+)+$`)

// keywords cannot be used as bare attribute names ("or" is accepted by
// some Nix versions but not all, so it is quoted too).
var keywords = []string{"assert", "else", "if", "in", "inherit", "let", "or", "rec", "then", "with"}

// Marshal returns v as a Nix expression followed by a newline. Attribute
// sets are printed one attribute per line with sorted names, lists one
// element per line, two spaces per level of indentation.
//
// Supported types: nil (null), bool, int, int64, string, []string, []any,
// map[string]any and Import. Strings must not contain NUL bytes, which Nix
// strings cannot hold.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := write(&b, v, 0, false); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// Quote returns s as a Nix double-quoted string literal. `"` and `\` are
// backslash-escaped, `${` becomes `\${` so it does not start an
// interpolation, newline, carriage return and tab become \n, \r and \t;
// everything else (UTF-8 included) is copied as is.
func Quote(s string) (string, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return "", errors.New("string contains a NUL byte, which Nix strings cannot hold")
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '$':
			if i+1 < len(s) && s[i+1] == '{' {
				b.WriteByte('\\')
			}
			b.WriteByte('$')
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// AttrName returns name as it must appear on the left of "=": unchanged when
// it is an identifier that is not a keyword, quoted otherwise ("13",
// "24.04", "if").
func AttrName(name string) (string, error) {
	if identifier.MatchString(name) && !slices.Contains(keywords, name) {
		return name, nil
	}
	return Quote(name)
}

func write(b *bytes.Buffer, v any, depth int, inList bool) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int:
		writeInt(b, int64(v), inList)
	case int64:
		writeInt(b, v, inList)
	case string:
		q, err := Quote(v)
		if err != nil {
			return err
		}
		b.WriteString(q)
	case Import:
		if !pathLiteral.MatchString(string(v)) {
			return fmt.Errorf("import path %q: want a relative path like ./name.nix", string(v))
		}
		if inList {
			fmt.Fprintf(b, "(import %s)", string(v))
		} else {
			fmt.Fprintf(b, "import %s", string(v))
		}
	case []string:
		list := make([]any, len(v))
		for i, s := range v {
			list[i] = s
		}
		return writeList(b, list, depth)
	case []any:
		return writeList(b, v, depth)
	case map[string]any:
		return writeAttrs(b, v, depth)
	default:
		return fmt.Errorf("unsupported type %T", v)
	}
	return nil
}

func writeInt(b *bytes.Buffer, n int64, inList bool) {
	// In a list "-1" would be parsed as a subtraction from the previous
	// element (or a syntax error), so negative numbers get parentheses.
	if n < 0 && inList {
		fmt.Fprintf(b, "(%d)", n)
		return
	}
	b.WriteString(strconv.FormatInt(n, 10))
}

func writeList(b *bytes.Buffer, list []any, depth int) error {
	if len(list) == 0 {
		b.WriteString("[ ]")
		return nil
	}
	b.WriteString("[\n")
	for i, e := range list {
		indent(b, depth+1)
		if err := write(b, e, depth+1, true); err != nil {
			return fmt.Errorf("list element %d: %w", i, err)
		}
		b.WriteByte('\n')
	}
	indent(b, depth)
	b.WriteByte(']')
	return nil
}

func writeAttrs(b *bytes.Buffer, attrs map[string]any, depth int) error {
	if len(attrs) == 0 {
		b.WriteString("{ }")
		return nil
	}
	names := make([]string, 0, len(attrs))
	for name := range attrs {
		names = append(names, name)
	}
	slices.Sort(names)
	b.WriteString("{\n")
	for _, name := range names {
		key, err := AttrName(name)
		if err != nil {
			return fmt.Errorf("attribute name %q: %w", name, err)
		}
		indent(b, depth+1)
		b.WriteString(key)
		b.WriteString(" = ")
		if err := write(b, attrs[name], depth+1, false); err != nil {
			return fmt.Errorf("attribute %q: %w", name, err)
		}
		b.WriteString(";\n")
	}
	indent(b, depth)
	b.WriteByte('}')
	return nil
}

func indent(b *bytes.Buffer, depth int) {
	for range depth {
		b.WriteString("  ")
	}
}
