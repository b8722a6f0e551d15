package guest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

// TestRestoreScript runs the restore script with bash as the backdoor
// runs it (after RestoreEnv's assignments, under set -euo pipefail), its
// commands replaced by functions that record their arguments and its paths
// redirected into a temp dir, and checks what it does: the clock, the seed,
// the reseed without a vmgenid driver and none with one, the fstab lines
// for boot and machine id, and the setup script run in a subshell with the
// parameters, the MACs, those lines and the virtiofs devices to wait for.
func TestRestoreScript(t *testing.T) {
	for _, vmgenid := range []bool{false, true} {
		t.Run(map[bool]string{false: "no vmgenid driver", true: "vmgenid driver bound"}[vmgenid], func(t *testing.T) {
			checkRestoreScript(t, vmgenid)
		})
	}
}

func checkRestoreScript(t *testing.T, vmgenid bool) {
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.Missing(t, "bash not installed")
	}
	root := t.TempDir()
	for _, d := range []string{"vfs/virtio3", "vfs/virtio4", "etc", "module/virtiofs", "vmgenid"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/machine-id", "0123\n")
	write("setup", `echo "setup $DISTROTEST_PARAMS restored=$DISTROTEST_RESTORED macs=$DISTROTEST_MACS virtiofs=$DISTROTEST_VIRTIOFS" >>`+root+`/log; printf '%s\n' "$DISTROTEST_FSTAB" >`+root+"/fstab\n")
	if vmgenid {
		if err := os.Symlink("../../../devices/QEMUVGID:00", filepath.Join(root, "vmgenid", "QEMUVGID:00")); err != nil {
			t.Fatal(err)
		}
	}
	r := Restore{
		Params: []string{"distrotest.hostname=b", "distrotest.net=1:2"},
		Now:    time.Unix(1700000000, 5),
		Seed:   []byte("seed"),
		BootID: "11111111-2222-4333-8444-555555555555", MachineID: "abcdef",
		MACs:     map[string]string{MAC(1, 0): MAC(1, 2)},
		Virtiofs: 2,
	}
	record := func(cmd string) string { return cmd + "() { echo \"" + cmd + " $*\" >>" + root + "/log; }\n" }
	var assign strings.Builder
	for _, kv := range RestoreEnv(r) {
		name, value, _ := strings.Cut(kv, "=")
		assign.WriteString(name + "='" + strings.ReplaceAll(value, "'", `'\''`) + "'\n")
	}
	script := "set -euo pipefail\n" + record("date") + record("modprobe") + record("perl") + assign.String() + RestoreScript()
	for _, p := range []struct{ from, to string }{
		{"/sys/bus/platform/drivers/vmgenid", root + "/vmgenid"},
		{"/sys/bus/acpi/drivers/vmgenid", root + "/vmgenid"},
		{"/sys/module", root + "/module"},
		{"/opt/distrotest/setup", root + "/setup"},
		{"/sys/bus/virtio/drivers/virtiofs", root + "/vfs"},
		{"/dev/urandom", root + "/urandom"},
		{"/run/", root + "/"},
		{"/etc/machine-id", root + "/etc/machine-id"},
	} {
		script = strings.ReplaceAll(script, p.from, p.to)
	}
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("restore failed: %v\n%s", err, stderr.String())
	}
	if len(out) != 0 {
		t.Errorf("stdout %q, want nothing (an empty reply costs no program)", out)
	}
	var steps []string
	last := strings.Fields(strings.TrimPrefix(strings.TrimSpace(stderr.String()), "distrotest-restore: steps"))
	for i := 0; i < len(last); i += 2 {
		steps = append(steps, last[i])
	}
	if d := cmp.Diff([]string{"start", "random", "setup", "clock"}, steps); d != "" {
		t.Errorf("steps in the last message %q (-want +got):\n%s", stderr.String(), d)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	reseed := `perl -e open(my $f, "<", "` + root + `/urandom") or die "$!\n"; ioctl($f, 0x5207, 0) or die "RNDRESEEDCRNG: $!\n"` + "\n"
	if vmgenid {
		reseed = ""
	}
	// date sets the clock by the offset from the guest's now to the host's
	// clock (-u -s "SECONDS seconds"): now plus it is the host's clock.
	log := read("log")
	var dateLine string
	for _, l := range strings.Split(log, "\n") {
		if strings.HasPrefix(l, "date ") {
			dateLine = l
		}
	}
	var off float64
	if _, err := fmt.Sscanf(dateLine, "date -u -s %f seconds", &off); err != nil {
		t.Fatalf("date line %q: %v", dateLine, err)
	}
	if got := float64(time.Now().UnixNano())/1e9 + off; got < 1700000000-5 || got > 1700000000+5 {
		t.Errorf("date %q sets the clock to %f, want about 1700000000", dateLine, got)
	}
	want := dateLine + "\n" + reseed +
		"setup distrotest.hostname=b distrotest.net=1:2 restored=1 macs=52:54:00:12:01:00=52:54:00:12:01:02 virtiofs=2\n"
	// The clock is set in the background: in any order.
	lines := func(s string) []string {
		l := strings.Split(s, "\n")
		sort.Strings(l)
		return l
	}
	if d := cmp.Diff(lines(want), lines(log)); d != "" {
		t.Errorf("commands (-want +got):\n%s", d)
	}
	wantFstab := root + "/distrotest-boot_id /proc/sys/kernel/random/boot_id none bind 0 0\n" +
		root + "/distrotest-machine-id " + root + "/etc/machine-id none bind 0 0\n"
	if d := cmp.Diff(wantFstab, read("fstab")); d != "" {
		t.Errorf("fstab lines for the setup script (-want +got):\n%s", d)
	}
	for name, want := range map[string]string{"urandom": "seed", "distrotest-boot_id": r.BootID + "\n", "distrotest-machine-id": "abcdef\n"} {
		if got := read(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
