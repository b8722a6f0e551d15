package driver

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/distrotest/distrotest/cmd/internal/guest"
)

// goldenDir holds driver.json as the Nix library writes it for a fixed
// declaration (tests/nix/golden.nix; tests/nix/eval.nix checks that the
// library still writes exactly this) and the guest identities the runner
// derives from it.
var goldenDir = filepath.Join("testdata", "golden")

// goOnlyKeys are the driver.json keys the Nix library never writes, and why.
var goOnlyKeys = map[string]string{
	"share_transport": "no Nix argument: for hand-written driver.json (the CLI has --share-transport)",
	"no_restore":      "the Nix library passes restore = false as --no-restore (and the snapshot as --snapshot-dir) on the command line; for hand-written driver.json",
}

// TestGoldenDriverJSON ties the Go side of the driver.json contract to the
// Nix side: the golden file decodes strictly and validates, every key of
// Config is in it (or in goOnlyKeys), and the identities derived from it
// are testdata/golden/identity.golden (rewritten by -update).
func TestGoldenDriverJSON(t *testing.T) {
	file := filepath.Join(goldenDir, "driver.json")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(file, data)
	if err != nil {
		t.Fatalf("the Nix library's driver.json does not decode: %v", err)
	}

	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	inFile := map[string]bool{}
	collectKeys(raw, inFile, false)
	for _, key := range jsonKeys(reflect.TypeOf(Config{})) {
		_, goOnly := goOnlyKeys[key]
		switch {
		case goOnly && inFile[key]:
			t.Errorf("key %q is in goOnlyKeys but the Nix library writes it: remove it from goOnlyKeys", key)
		case !goOnly && !inFile[key]:
			t.Errorf("key %q of driver.Config is not in %s: make lib/ write it (and tests/nix/golden.nix declare it), or add it to goOnlyKeys with the reason", key, file)
		}
	}

	var b strings.Builder
	hosts := testHosts(c)
	for i, mc := range c.Machines {
		mcfg, _ := machineConfig(mc, hosts[i].N, hosts, "/host/shared", "/host/xchg-"+mc.Name)
		params, err := guest.KernelParams(mcfg.Identity())
		if err != nil {
			t.Fatalf("machine %s: %v", mc.Name, err)
		}
		fmt.Fprintf(&b, "machine %s: host name %s, node %d\n", mc.Name, guest.HostName(mc.Name), hosts[i].N)
		for _, v := range mc.VLANs {
			fmt.Fprintf(&b, "  vlan %d: mac %s, %s, %s\n", v, guest.MAC(v, hosts[i].N), guest.IPv4(v, hosts[i].N), guest.IPv6(v, hosts[i].N))
		}
		for _, s := range mcfg.Shares {
			fmt.Fprintf(&b, "  share %s: %s -> %s (read-only %t)\n", s.Tag, s.Source, s.Target, s.ReadOnly)
		}
		fmt.Fprintf(&b, "  kernel: %s\n", strings.Join(params, " "))
	}
	checkGolden(t, filepath.Join(goldenDir, "identity.golden"), b.String())
}

// collectKeys adds the object keys in v to keys; the keys of shared_dirs
// are tags, not schema keys.
func collectKeys(v any, keys map[string]bool, tags bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if !tags {
				keys[k] = true
			}
			collectKeys(e, keys, !tags && k == "shared_dirs")
		}
	case []any:
		for _, e := range v {
			collectKeys(e, keys, false)
		}
	}
}

// jsonKeys returns the JSON keys of struct type t and of the structs it
// holds, sorted.
func jsonKeys(t reflect.Type) []string {
	set := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			set[name] = true
			walk(f.Type)
		}
	}
	walk(t)
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
