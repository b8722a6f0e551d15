package guest

import (
	"encoding/base64"
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

// RestoreScript is the bash script that applies a Restore.
func RestoreScript() string { return string(asset("restore")) }

// RestoreEnv returns the environment (NAME=VALUE) RestoreScript reads.
func RestoreEnv(r Restore) []string {
	var macs []string
	for old, mac := range r.MACs {
		macs = append(macs, old+"="+mac)
	}
	sort.Strings(macs)
	return []string{
		fmt.Sprintf("DT_NOW=%d.%09d", r.Now.Unix(), r.Now.Nanosecond()),
		"DT_SEED=" + base64.StdEncoding.EncodeToString(r.Seed),
		"DT_BOOT_ID=" + r.BootID,
		"DT_MACHINE_ID=" + r.MachineID,
		"DT_MACS=" + strings.Join(macs, " "),
		fmt.Sprintf("DT_VIRTIOFS=%d", r.Virtiofs),
		"DT_SETUP=" + string(asset("setup")),
		"DISTROTEST_PARAMS=" + strings.Join(r.Params, " "),
	}
}
