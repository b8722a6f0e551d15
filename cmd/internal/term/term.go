// Package term answers, once for the whole project, what kind of output a
// writer is: a terminal, one that wants colour, one that wants live
// progress. The CLIs ask; libraries take the answers as plain values.
package term

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && isatty.IsTerminal(f.Fd())
}

// Color reports whether output to w should be coloured: w is a terminal,
// NO_COLOR is unset or empty and TERM is not "dumb".
func Color(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return IsTerminal(w)
}

// CI reports whether the process runs in CI (CI=true, as CI systems set).
func CI() bool { return os.Getenv("CI") == "true" }

// Progress reports whether live progress (bars, step lines that redraw)
// should go to w: a terminal, and not in CI.
func Progress(w io.Writer) bool { return !CI() && IsTerminal(w) }
