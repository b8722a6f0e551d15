//go:build !distrotest_noembed

// Package distros embeds the distro descriptions (*.hcl) so the binaries
// carry them: `distrotest-gen image patch --distro debian/13` and
// `distrotest run --image debian/13` work anywhere, also inside the Nix
// sandbox. The schema is documented in README.md beside this file.
//
// Built with the tag distrotest_noembed (lib/package.nix's patcher), FS
// is empty: that binary takes every fact from `image patch --spec`, so an
// edit of one description does not change it, nor every prepared image.
package distros

import "embed"

// FS holds every distros/*.hcl file at its root.
//
//go:embed *.hcl
var FS embed.FS
