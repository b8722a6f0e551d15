package driver

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestLoadGolden decodes every testdata/config/*.json: a good file's
// decoded, defaulted and resolved Config is dumped to <case>.golden, a bad
// file's error message is.
func TestLoadGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "config", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	absTestdata, err := filepath.Abs(filepath.Join("testdata", "config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			var got string
			c, err := Load(file)
			if err != nil {
				got = "error: " + err.Error() + "\n"
			} else {
				data, err := json.MarshalIndent(c, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = strings.ReplaceAll(string(data), absTestdata, "$TESTDATA") + "\n"
			}
			checkGolden(t, strings.TrimSuffix(file, ".json")+".golden", got)
		})
	}
}

// checkGolden compares got with the golden file, or rewrites it with
// -update.
func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", golden, diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "driver.json"))
	if err == nil || !strings.Contains(err.Error(), "driver.json") {
		t.Errorf("err = %v", err)
	}
}

// TestDefaultsAreValid checks that a config that passed Validate still does
// after defaults are filled in, and that filling them in is idempotent.
func TestDefaultsAreValid(t *testing.T) {
	c, err := Parse("x.json", []byte(`{"version":1,"test_script":"t.py","machines":[{"name":"b","image":"i","vlans":[2]},{"name":"a","image":"i"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaulted config does not validate: %v", err)
	}
	before, _ := json.Marshal(c)
	c.setDefaults()
	after, _ := json.Marshal(c)
	if diff := cmp.Diff(string(before), string(after)); diff != "" {
		t.Errorf("setDefaults is not idempotent:\n%s", diff)
	}
	if c.Machines[0].Name != "a" {
		t.Errorf("machines are not sorted by name: %v", c.Machines)
	}
	if diff := cmp.Diff([]int{2}, c.VLANs); diff != "" {
		t.Errorf("vlans (-want +got):\n%s", diff)
	}
}
