package pybridge

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeTableMatchesStub keeps the README's test-script API section
// true to the stub: every function it names exists in the stub, and every
// public Machine method of the stub is named in it.
func TestReadmeTableMatchesStub(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "### Test-script API\n")
	end := strings.Index(text, "#### Where distrotest differs")
	if start < 0 || end < start {
		t.Fatal("README has no test-script API section")
	}
	section := text[start:end]
	stub := string(Stub())

	defined := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*def (\w+)\(`).FindAllStringSubmatch(stub, -1) {
		defined[m[1]] = true
	}
	for _, m := range regexp.MustCompile("`(?:[\\w.]+\\.)?([a-z_]\\w*)\\(").FindAllStringSubmatch(section, -1) {
		if !defined[m[1]] {
			t.Errorf("README names %s(), which the stub does not define", m[1])
		}
	}

	cls := stub[strings.Index(stub, "\nclass Machine:"):]
	cls = cls[:strings.Index(cls[1:], "\nclass ")+1]
	for _, m := range regexp.MustCompile(`(?m)^    def ([a-z]\w*)\(`).FindAllStringSubmatch(cls, -1) {
		if !regexp.MustCompile(`\b` + m[1] + `\b`).MatchString(section) {
			t.Errorf("Machine.%s is in the stub but not in the README's table", m[1])
		}
	}
}

// TestReadmeParametersMatchStub keeps the parameter names the README's API
// section writes true to the stub: in `name(a, b=1)`, a and b are
// parameters of a function called name in the stub (any of them, when
// several share the name).
func TestReadmeParametersMatchStub(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	section := text[strings.Index(text, "### Test-script API\n"):strings.Index(text, "#### Where distrotest differs")]
	params := map[string]map[string]bool{} // function → its parameters
	ident := regexp.MustCompile(`^[A-Za-z_]\w*$`)
	for _, m := range regexp.MustCompile(`(?ms)^\s*def (\w+)\((.*?)\)\s*(?:->[^:]*)?:`).FindAllStringSubmatch(string(Stub()), -1) {
		if params[m[1]] == nil {
			params[m[1]] = map[string]bool{}
		}
		for _, p := range strings.Split(m[2], ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(p), ":")
			name, _, _ = strings.Cut(name, "=")
			params[m[1]][strings.TrimLeft(strings.TrimSpace(name), "*")] = true
		}
	}
	checked := 0
	for _, m := range regexp.MustCompile("`(?:[\\w.]+\\.)?([a-z_]\\w*)\\(([^)`]*)\\)").FindAllStringSubmatch(section, -1) {
		for _, arg := range strings.Split(m[2], ",") {
			name, _, _ := strings.Cut(arg, "=")
			name = strings.TrimLeft(strings.TrimSpace(name), "*")
			if !ident.MatchString(name) || strings.Contains(arg, "[") || strings.Contains(arg, "]") {
				continue // "...", "*", a literal argument such as [a, b]
			}
			if ps, ok := params[m[1]]; ok && !ps[name] {
				t.Errorf("README writes %s(%s): the stub's %s has no parameter %s", m[1], m[2], m[1], name)
			}
			checked++
		}
	}
	if checked < 30 {
		t.Errorf("only %d parameters checked: the README's API section or this test's patterns changed", checked)
	}
}
