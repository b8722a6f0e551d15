// Command distrotest-gen is distrotest's build-time tool: it compiles
// distros/*.hcl into Nix data (gen/), builds, inspects and patches distro
// images offline so the runner can drive them, and pulls and pushes images
// (KubeVirt containerDisks, prepared images) through OCI registries.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "distrotest-gen:", err)
		os.Exit(1)
	}
}
