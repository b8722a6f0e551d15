#!/usr/bin/env bash
# Checks that vendorHash in lib/package.nix is the hash buildGoModule will
# compute: the NAR hash (sha256, SRI) of the directory `go mod vendor` writes
# for the whole module. Prints the expected value when it is stale.
# Usage: scripts/check-vendor-hash.sh [--fix]   (--fix rewrites lib/package.nix)
set -euo pipefail
cd "$(dirname "$0")/.."

nix=(nix --extra-experimental-features nix-command)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# buildGoModule runs `go mod vendor` in a copy of the source and stores the
# vendor directory as a recursive (NAR) fixed-output; -o writes the same tree
# without touching the working copy.
if ! go mod vendor -o "$tmp/vendor" 2>"$tmp/err"; then
  echo "FAIL vendorHash: go mod vendor failed:" >&2
  cat "$tmp/err" >&2
  exit 1
fi
want=$("${nix[@]}" hash path --type sha256 --sri "$tmp/vendor")
have=$(sed -n 's/^ *vendorHash = "\(sha256-[^"]*\)";.*/\1/p' lib/package.nix)

if [ "$want" = "$have" ]; then
  echo "PASS vendorHash $have"
  exit 0
fi
if [ "${1:-}" = "--fix" ]; then
  sed -i "s|vendorHash = \"$have\";|vendorHash = \"$want\";|" lib/package.nix
  echo "FIXED vendorHash: $have -> $want (lib/package.nix)"
  exit 0
fi
echo "FAIL vendorHash: lib/package.nix has ${have:-<none>}, go mod vendor gives $want"
echo "     run scripts/check-vendor-hash.sh --fix (or set vendorHash = \"$want\";)"
exit 1
