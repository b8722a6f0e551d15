//go:build !linux

package qemu

// hostRelease returns "" where there is no /proc.
func hostRelease() string { return "" }

// deviceID returns "absent": KVM is Linux only.
func deviceID(string) string { return "absent" }
