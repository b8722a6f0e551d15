package distro

import (
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
)

// DiagnosticsError is returned by the loaders when the descriptions have
// problems. It keeps the parsed files so the diagnostics can be rendered
// with their source lines.
type DiagnosticsError struct {
	Diagnostics hcl.Diagnostics
	Files       map[string]*hcl.File
}

// Error returns the diagnostics on one line, for callers that do not
// render them.
func (e *DiagnosticsError) Error() string { return e.Diagnostics.Error() }

// Write renders every diagnostic with hcl's text writer, each preceded by
// its position as file:line:column so editors and terminals can jump to it:
//
//	distros/debian.hcl:12:3: Error: Duplicate release
//
//	  on distros/debian.hcl line 12, in distro "debian":
//	  12:   release "13" {
//
//	Release "13" of distro "debian" is already defined at distros/debian.hcl:5,3-15.
//
// width wraps the detail text (0: no wrapping); color adds terminal escapes.
func (e *DiagnosticsError) Write(w io.Writer, width uint, color bool) error {
	tw := hcl.NewDiagnosticTextWriter(w, e.Files, width, color)
	for _, d := range e.Diagnostics {
		if d.Subject != nil {
			if _, err := fmt.Fprintf(w, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column); err != nil {
				return err
			}
		}
		if err := tw.WriteDiagnostic(d); err != nil {
			return err
		}
	}
	return nil
}
