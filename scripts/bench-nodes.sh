#!/usr/bin/env bash
# Bench: wall time to all-backdoors-ready for 1, 2 and 4 Debian 13 nodes on
# one VLAN (1 GiB, 2 vCPUs each), measured in one run on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./cmd/distrotest ./cmd/distrotest-gen
img=$(bin/distrotest-gen image prepare debian/13)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in 1 2 4; do
  machines=
  for i in $(seq 1 "$n"); do
    machines+="${machines:+,}{\"name\":\"node$i\",\"image\":\"$img\",\"vlans\":[1]}"
  done
  cat >"$tmp/driver.json" <<JSON
{"version":1,"name":"bench-$n","test_script":"$PWD/tests/bench/nodes.py","vlans":[1],"machines":[$machines]}
JSON
  bin/distrotest run --out-dir "$tmp/out$n" --config "$tmp/driver.json" 2>/dev/null | grep BENCH
done
