// Package distros embeds the distro descriptions (*.hcl) so the binaries
// carry them: `distrotest-gen image patch --distro debian/13` and
// `distrotest run --image debian/13` work anywhere, also inside the Nix
// sandbox. The schema is documented in README.md beside this file.
package distros

import "embed"

// FS holds every distros/*.hcl file at its root.
//
//go:embed *.hcl
var FS embed.FS
