package guest

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Restore is what a machine restored from a snapshot gets through its
// shell instead of at boot: the snapshot was booted without an identity,
// so the host runs RestoreScript with RestoreEnv (the setup script runs
// again with the machine's KernelParams), and sets what a fresh boot would
// have made fresh (clock, randomness, boot and machine id).
type Restore struct {
	// Params are the machine's KernelParams, for the setup script.
	Params []string
	// Now is the host's clock.
	Now time.Time
	// Seed is mixed into the guest's /dev/urandom.
	Seed []byte
	// BootID is a UUID ("xxxxxxxx-xxxx-...", lower case); MachineID 32
	// lower-case hex digits.
	BootID, MachineID string
	// MACs maps the MAC of each VLAN NIC in the snapshot to the machine's.
	MACs map[string]string
	// Virtiofs is how many hot-plugged virtiofs devices to wait for.
	Virtiofs int
}

// RestoreScript is the bash code that applies a Restore. The image has it
// at RestorePath (PlanFor); the backdoor command that restores is the
// assignments RestoreEnv lists, then ". RestorePath" (no bash of its own,
// and a short command: bash reads a command from its terminal a byte at a
// time, a file faster).
func RestoreScript() string { return string(asset("restore")) }

// RestorePath is where the image has RestoreScript.
const RestorePath = scriptDir + "/restore"

// RestoreEnv returns the variables (NAME=VALUE) RestoreScript reads.
func RestoreEnv(r Restore) []string {
	var macs []string
	for old, mac := range r.MACs {
		macs = append(macs, old+"="+mac)
	}
	sort.Strings(macs)
	return []string{
		fmt.Sprintf("DT_NOW=%d.%09d", r.Now.Unix(), r.Now.Nanosecond()),
		"DT_SEED=" + printfEscapes(r.Seed),
		"DT_BOOT_ID=" + r.BootID,
		"DT_MACHINE_ID=" + r.MachineID,
		"DT_MACS=" + strings.Join(macs, " "),
		fmt.Sprintf("DT_VIRTIOFS=%d", r.Virtiofs),
		"DISTROTEST_PARAMS=" + strings.Join(r.Params, " "),
	}
}

// printfEscapes is b as printf(1) escapes (\xHH each byte), which bash's
// printf builtin turns back into b.
func printfEscapes(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "\\x%02x", c)
	}
	return sb.String()
}
