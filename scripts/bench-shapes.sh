#!/usr/bin/env bash
# Bench: boot to backdoor of each stand-in family shape beside Debian 13's,
# measured in the same run, interleaved round by round (the machine is
# noisy: compare the medians, not single runs). Prints each image's median
# and its ratio to Debian's. Usage: scripts/bench-shapes.sh [ROUNDS] (3)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
go build -o bin/ ./cmd/distrotest ./cmd/distrotest-gen
images=(debian/13 shape/ubuntu shape/fedora shape/el)
declare -A dir
for i in "${images[@]}"; do
  dir[$i]=$(bin/distrotest-gen image prepare "$i")
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  for i in "${images[@]}"; do
    line=$(bin/distrotest run --out-dir "$tmp/out" --image "${dir[$i]}" tests/bench/shape_boot.py 2>/dev/null | grep 'BENCH boot-to-backdoor')
    echo "round $r $i: ${line#*BENCH }"
    s=${line#*: }; echo "${s%% s*}" >>"$tmp/${i//\//-}"
    rm -rf "$tmp/out"
  done
done
median() { sort -n "$1" | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
base=$(median "$tmp/debian-13")
for i in "${images[@]}"; do
  m=$(median "$tmp/${i//\//-}")
  awk -v i="$i" -v m="$m" -v b="$base" -v r="$rounds" \
    'BEGIN { printf "BENCH %-13s boot-to-backdoor median %5.1f s over %d rounds, %.2fx debian/13\n", i, m, r, m / b }'
done
