package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/distrotest/distrotest/internal/testenv"
)

// TestRestoreScript runs the restore script with bash, its commands
// replaced by functions that record their arguments and its paths
// redirected into a temp dir, and checks what it does with RestoreEnv:
// the clock, the seed, boot and machine id, the NIC's MAC, the wait for the
// virtiofs devices, and the setup script run with the parameters.
func TestRestoreScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		testenv.Missing(t, "bash not installed")
	}
	root := t.TempDir()
	for _, d := range []string{"net/ens3", "vfs/virtio3", "vfs/virtio4", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("net/ens3/address", MAC(1, 0)+"\n")
	write("etc/machine-id", "0123\n")
	r := Restore{
		Params: []string{"distrotest.hostname=b", "distrotest.net=1:2"},
		Now:    time.Unix(1700000000, 5),
		Seed:   []byte("seed"),
		BootID: "11111111-2222-4333-8444-555555555555", MachineID: "abcdef",
		MACs:     map[string]string{MAC(1, 0): MAC(1, 2)},
		Virtiofs: 2,
	}
	record := func(cmd string) string { return cmd + "() { echo \"" + cmd + " $*\" >>" + root + "/log; }\n" }
	script := record("date") + record("mount") + record("ip") + record("modprobe") + record("perl") + RestoreScript()
	for _, p := range []struct{ from, to string }{
		{"/sys/class/net", root + "/net"},
		{"/sys/bus/virtio/drivers/virtiofs", root + "/vfs"},
		{"/dev/urandom", root + "/urandom"},
		{"/run/", root + "/"},
		{"/etc/machine-id", root + "/etc/machine-id"},
	} {
		script = strings.ReplaceAll(script, p.from, p.to)
	}
	cmd := exec.Command("bash", "-c", script)
	for _, kv := range RestoreEnv(r) {
		if strings.HasPrefix(kv, "DT_SETUP=") {
			kv = "DT_SETUP=echo \"setup $DISTROTEST_PARAMS\" >>" + root + "/log"
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("restore failed: %v\n%s", err, out)
	}
	var steps []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		steps = append(steps, strings.Fields(l)[0])
	}
	if d := cmp.Diff([]string{"start", "clock", "random", "ids", "macs", "virtiofs", "setup"}, steps); d != "" {
		t.Errorf("steps on stdout (-want +got):\n%s", d)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := `date -u -s @1700000000.000000005
perl -e open(my $f, "<", "` + root + `/urandom") or die "$!\n"; ioctl($f, 0x5207, 0) or die "RNDRESEEDCRNG: $!\n"
mount --bind ` + root + `/distrotest-boot_id /proc/sys/kernel/random/boot_id
mount --bind ` + root + `/distrotest-machine-id ` + root + `/etc/machine-id
ip link set dev ens3 address 52:54:00:12:01:02
modprobe -q virtiofs
setup distrotest.hostname=b distrotest.net=1:2
`
	if d := cmp.Diff(want, read("log")); d != "" {
		t.Errorf("commands (-want +got):\n%s", d)
	}
	for name, want := range map[string]string{"urandom": "seed", "distrotest-boot_id": r.BootID + "\n", "distrotest-machine-id": "abcdef\n"} {
		if got := read(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
