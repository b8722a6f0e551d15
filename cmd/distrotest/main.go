// Command distrotest runs integration tests on real Linux distributions:
// it boots prepared distro images under QEMU and runs a Python test script
// written against the NixOS test driver's API.
//
//	distrotest run --config driver.json
//	distrotest run --image debian/13 script.py
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
	go func() {
		// After the first signal the run cleans up; a second one kills the
		// runner at once (QEMU and Python die with it, by parent-death
		// signal).
		<-ctx.Done()
		stop()
	}()
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "distrotest:", err)
		os.Exit(1)
	}
}
