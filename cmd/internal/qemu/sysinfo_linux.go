package qemu

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// hostRelease returns the running kernel's release (uname -r).
func hostRelease() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// deviceID returns "major:minor" of the device node at path, or "absent".
func deviceID(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "absent"
	}
	rdev := uint64(st.Rdev)
	major := (rdev>>8)&0xfff | (rdev>>32)&^0xfff
	minor := rdev&0xff | (rdev>>12)&^0xff
	return fmt.Sprintf("%d:%d", major, minor)
}
