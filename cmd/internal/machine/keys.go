package machine

import "strings"

// charKeys maps characters that are not key names by themselves to QEMU
// sendkey names, for a US keyboard layout.
var charKeys = map[string]string{
	" ": "spc", "\n": "ret", "\t": "tab",
	"-": "minus", "_": "shift-minus",
	"=": "equal", "+": "shift-equal",
	"[": "bracket_left", "{": "shift-bracket_left",
	"]": "bracket_right", "}": "shift-bracket_right",
	";": "semicolon", ":": "shift-semicolon",
	"'": "apostrophe", `"`: "shift-apostrophe",
	"`": "grave_accent", "~": "shift-grave_accent",
	`\`: "backslash", "|": "shift-backslash",
	",": "comma", "<": "shift-comma",
	".": "dot", ">": "shift-dot",
	"/": "slash", "?": "shift-slash",
	"!": "shift-1", "@": "shift-2", "#": "shift-3", "$": "shift-4", "%": "shift-5",
	"^": "shift-6", "&": "shift-7", "*": "shift-8", "(": "shift-9", ")": "shift-0",
}

// KeyFor translates a single character to its sendkey name ("A" is
// "shift-a"); anything else (a key name or combination) is returned as is.
func KeyFor(key string) string {
	if k, ok := charKeys[key]; ok {
		return k
	}
	if len(key) == 1 && key[0] >= 'A' && key[0] <= 'Z' {
		return "shift-" + strings.ToLower(key)
	}
	return key
}
