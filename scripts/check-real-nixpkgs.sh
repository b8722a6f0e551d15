#!/usr/bin/env bash
# Checks the Nix layer against a real nixpkgs source tree instead of the
# stand-in (scripts/check-nix.sh): a nixpkgs checkout at or near the pin in
# flake.lock, or a nix-community/nixpkgs.lib checkout (lib/ only). Nothing is
# downloaded; the tree is read, never modified.
#
#   lib     nixpkgs' lib/ (copied to a temporary directory) in place of
#           tests/nix/stand-in-lib.nix: every lib function distrotest uses
#           exists and gives the stand-in's results on distrotest's kinds of
#           arguments (tests/nix/real-lib.nix), and every interface check and
#           error message of tests/nix/eval.nix holds with the real lib
#           (packages and images still from the stand-in package set). Nix
#           older than 2.14 lacks builtins.readFileType, which lib/filesystem.nix
#           needs: the copy gets a readDir-based fallback (the only change).
#   pkgs    with a full checkout and Nix >= 2.18 (the pin refuses older Nix):
#           every package attribute the stand-in offers (exactly what lib/ uses)
#           exists in nixpkgs, and every lib output of both systems instantiates
#           against real nixpkgs. With an older Nix or a lib-only tree this stage
#           says that it was skipped and why: it is not counted as passed.
#
# Usage: scripts/check-real-nixpkgs.sh NIXPKGS_DIR
# Ends with "real nixpkgs: N passed, M failed, K skipped"; exit status 1 when
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 1 ] || [ ! -d "$1/lib" ]; then
  echo "usage: $0 NIXPKGS_DIR (a nixpkgs or nixpkgs.lib checkout: it must have lib/)" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
passed=0 failed=0 skipped=0
pass() { echo "ok    $*"; passed=$((passed + 1)); }
fail() { echo "FAIL  $*"; failed=$((failed + 1)); }
skip() { echo "skip  $*"; skipped=$((skipped + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nix_version=$(nix-instantiate --eval -E 'builtins.nixVersion' | tr -d '"')
newer() { nix-instantiate --eval -E "builtins.compareVersions builtins.nixVersion \"$1\" >= 0" 2>/dev/null | grep -q true; }
echo "nixpkgs tree: $src ($(cat "$src/lib/.version" 2>/dev/null || echo "no lib/.version")); nix $nix_version"

# --- lib ----------------------------------------------------------------------
cp -r "$src/lib" "$tmp/lib"
chmod -R u+w "$tmp/lib"
if ! newer 2.14; then
  sed -i 's|^  pathType = builtins.readFileType;$|  pathType = builtins.readFileType or (p: (builtins.readDir (dirOf p)).${baseNameOf p}); # check-real-nixpkgs.sh: Nix < 2.14|' "$tmp/lib/filesystem.nix"
  grep -q 'check-real-nixpkgs.sh: Nix < 2.14' "$tmp/lib/filesystem.nix" ||
    fail "lib: nix $nix_version lacks builtins.readFileType and lib/filesystem.nix has no 'pathType = builtins.readFileType;' line to give a fallback"
fi
real="import $tmp/lib"

json_checks() { # EXPR WHAT: evaluates an attrset of name → true | message
  if nix-instantiate --eval --strict --read-write-mode --json -E "$1" >"$tmp/checks.json" 2>"$tmp/err"; then
    python3 - "$tmp/checks.json" "$2" >"$tmp/report" <<'EOF'
import json, sys
checks = json.load(open(sys.argv[1]))
for name, v in sorted(checks.items()):
    print(("ok " if v is True else "FAIL ") + sys.argv[2] + ": " + name + ("" if v is True else ": " + str(v)))
EOF
    while read -r verdict rest; do
      if [ "$verdict" = ok ]; then pass "$rest"; else fail "$rest"; fi
    done <"$tmp/report"
  else
    fail "$2: evaluation failed: $(grep -m1 error: "$tmp/err")"
  fi
}

json_checks "(import ./tests/nix/real-lib.nix { realLib = $real; }).checks" "lib function"
json_checks "(import ./tests/nix/eval.nix { realLib = $real; }).checks" "eval.nix with the real lib"

nix_instantiate() { nix-instantiate "$@"; }
# shellcheck source=scripts/eval-errors.sh
. scripts/eval-errors.sh
eval_errors "{ realLib = $real; }" "error message with the real lib"

# --- pkgs ---------------------------------------------------------------------
if [ ! -d "$src/pkgs/top-level" ]; then
  skip "pkgs: $src has no pkgs/ (a lib-only tree): package attributes and the lib outputs against real nixpkgs not evaluated"
elif ! newer 2.18; then
  skip "pkgs: nix $nix_version cannot evaluate nixpkgs' pkgs/ (its lib/minfeatures.nix needs Nix >= 2.18): package attributes and the lib outputs not evaluated"
else
  attrs=$(nix-instantiate --eval --strict --json -E 'builtins.attrNames (import ./tests/nix/stand-in.nix { anyImage = ./tests/nix/gen-fixture.nix; goModCache = "/nonexistent"; })' |
    python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)))')
  for system in x86_64-linux aarch64-linux; do
    for a in $attrs; do
      if nix-instantiate --eval -E "(import $src { system = \"$system\"; config = { }; overlays = [ ]; }) ? $a" 2>"$tmp/err" | grep -q true; then
        pass "pkgs.$a exists ($system)"
      else
        fail "pkgs.$a: not in nixpkgs for $system $(grep -m1 error: "$tmp/err")"
      fi
    done
    expr="let l = import ./lib { pkgs = import $src { system = \"$system\"; config = { }; overlays = [ ]; }; }; in
      [ (l.debian.\"13\" { testScript = \"start_all()\"; diskSize = \"+2G\"; }).sandboxed.drvPath
        (l.debian.\"13\" { testScript = \"\"; }).driverInteractive.drvPath
        (l.makeTest { name = \"t\"; enableOCR = true; nodes.a = { distro = \"debian\"; version = \"13\"; extraPathsToRegister = [ ./README.md ]; }; nodes.b = { distro = \"ubuntu\"; version = \"24_04\"; }; testScript = \"\"; }).sandboxed.drvPath ]"
    if nix-instantiate --eval --strict -E "$expr" >/dev/null 2>"$tmp/err"; then
      pass "lib outputs instantiate against real nixpkgs ($system)"
    else
      fail "lib outputs against real nixpkgs ($system): $(grep -m1 error: "$tmp/err")"
    fi
  done
fi

echo "real nixpkgs: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
