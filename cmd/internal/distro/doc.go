// Package distro reads the distro descriptions in distros/*.hcl and turns
// them into a validated domain model: which releases of which distributions
// exist, their cloud images per Nix system (URL and hash), and what the
// image patcher and the runner need to know about them (root filesystem,
// strategy, kernel and initrd paths, root partition, network stack, quirks).
//
// Decoding happens in two layers: gohcl decodes each file into the tagged
// structs of schema.go, then load.go converts them into Distro and Release
// values, applying distro-level defaults and per-release overrides. Every
// problem is reported as a positioned hcl.Diagnostic (file, line, column,
// with the source line when rendered by WriteDiagnostics); nothing here
// prints or exits.
//
// Hashes are accepted as SHA-256 (hex, Nix base-32 or SRI) or SHA-512 (hex,
// Nix base-32 or SRI); Hash.SRI gives the canonical form Nix wants.
//
// This package does not fetch or inspect images and does not write Nix
// (see nixgen). Its tests are plain unit tests, driven by golden files in
// testdata/: `go test ./cmd/internal/distro -update` rewrites them.
package distro
