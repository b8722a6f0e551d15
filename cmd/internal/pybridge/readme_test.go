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
