//go:build distrotest_noembed

package distros

import "embed"

// FS is empty in builds with the distrotest_noembed tag: the patcher
// built for Nix gets each release's facts from `image patch --spec`.
var FS embed.FS
