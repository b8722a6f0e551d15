package guest

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// The machine-identity rules: what a node name, a share tag, a mount target
// and a VLAN may be, and what the guest derives from them (host name, node
// number, MAC and addresses). They are this package's because KernelParams
// puts them on the kernel command line; the driver validates driver.json
// with them, and the Nix library (lib/arguments.nix, lib/nodes.nix) checks
// the same, tied to these by testdata/rules.json and the driver's golden
// driver.json (cmd/internal/driver/testdata/golden).
const (
	// MaxNodeName is the longest node name (a host name label).
	MaxNodeName = 63
	// MaxShareTag is the longest share tag (9p's mount tag limit, 31 bytes).
	MaxShareTag = 31
	// MaxVLAN is the highest VLAN number (VLANs are 1..MaxVLAN: the third
	// octet of 192.168.<vlan>.<n>).
	MaxVLAN = 254
	// MaxNodes is how many nodes fit on a VLAN (node numbers 1..MaxNodes:
	// the fourth octet).
	MaxNodes = 254
	// StoreTag is the mount tag (9p or virtiofs) of the Nix store share;
	// no other share may use it.
	StoreTag = "nix-store"
)

// CheckNodeName says why name cannot be a node name, or returns nil: a
// letter, then letters, digits, '-' and '_', at most MaxNodeName in all.
// A node name becomes the guest's host name (HostName) and, with '-' as
// '_', a Python identifier in the test script.
func CheckNodeName(name string) error {
	if !isName(name, MaxNodeName) {
		return fmt.Errorf("name %q: use letters, digits, '-' and '_' (at most %d), starting with a letter", name, MaxNodeName)
	}
	return nil
}

// HostName is the guest's host name for node name, derived as nixpkgs
// derives it: characters not allowed in a host name (anything but ASCII
// letters, digits and '-') are dropped, and so are leading and trailing
// '-'. Node "one_two" is host "onetwo".
func HostName(node string) string {
	var b strings.Builder
	for _, r := range node {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		}
	}
	return strings.Trim(b.String(), "-")
}

// CheckShareTag says why tag cannot be a share's mount tag, or returns nil:
// a letter, then letters, digits, '-' and '_', at most MaxShareTag in all,
// and not StoreTag.
func CheckShareTag(tag string) error {
	if !isName(tag, MaxShareTag) {
		return fmt.Errorf("tag %q: use letters, digits, '-' and '_' (at most %d), starting with a letter", tag, MaxShareTag)
	}
	if tag == StoreTag {
		return fmt.Errorf("tag %q is reserved for the Nix store", tag)
	}
	return nil
}

// CheckMountTarget says why target cannot be a share's mount point in the
// guest, or returns nil: an absolute path other than /, without white
// space, quotes, backslashes, ',' or ':' (it travels on the kernel command
// line as TAG:TARGET).
func CheckMountTarget(target string) error {
	if !path.IsAbs(target) || path.Clean(target) == "/" || strings.ContainsAny(target, " \t\n\r\v\f,:\"'\\") {
		return fmt.Errorf("target %q must be an absolute path (not /) without spaces, quotes, ',' or ':'", target)
	}
	return nil
}

// CheckVLAN says why v cannot be a VLAN number, or returns nil.
func CheckVLAN(v int) error { return checkRange("vlan", v, MaxVLAN) }

// CheckNodeNumber says why n cannot be a node number, or returns nil.
func CheckNodeNumber(n int) error { return checkRange("node number", n, MaxNodes) }

// NodeNumbers numbers the nodes of a test by name, from 1: the number is
// the last octet of the node's addresses and MACs.
func NodeNumbers(names []string) map[string]int {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	out := make(map[string]int, len(sorted))
	for i, n := range sorted {
		out[n] = i + 1
	}
	return out
}

// MAC returns the MAC address of the NIC on vlan for node n.
func MAC(vlan, n int) string {
	return fmt.Sprintf("52:54:00:12:%02x:%02x", vlan, n)
}

// IPv4 returns node n's IPv4 address on vlan.
func IPv4(vlan, n int) string { return fmt.Sprintf("192.168.%d.%d", vlan, n) }

// IPv6 returns node n's IPv6 address on vlan.
func IPv6(vlan, n int) string { return fmt.Sprintf("2001:db8:%d::%d", vlan, n) }

// hostName checks node and returns its host name.
func hostName(node string) (string, error) {
	if err := CheckNodeName(node); err != nil {
		return "", fmt.Errorf("node %w", err)
	}
	return HostName(node), nil
}

// isName: a letter, then letters, digits, '-' and '_', at most max bytes.
func isName(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return false
		}
		if !letter && !(r >= '0' && r <= '9') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

func checkRange(what string, v, max int) error {
	if v < 1 || v > max {
		return fmt.Errorf("%s %d is out of range 1..%d", what, v, max)
	}
	return nil
}
