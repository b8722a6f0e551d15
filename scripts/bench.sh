#!/usr/bin/env bash
# Benchmarks, each against a baseline measured in the same run:
#  - image patch vs virt-customize making the same edits (needs scripts/setup.sh --bench)
#  - boot to backdoor and commands per second (distrotest run, tests/bench/boot.py)
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./cmd/distrotest ./cmd/distrotest-gen
img=$(bin/distrotest-gen image build debian/13)

echo "== image patch vs virt-customize on $img"
out=$(DISTROTEST_BENCH_IMAGE=$img go test -run '^$' -bench 'Patch$|VirtCustomize' -benchtime 3x ./cmd/internal/imagepatch/ | tee /dev/stderr)
patch=$(awk '/^BenchmarkPatch-/ {print $3}' <<<"$out")
virt=$(awk '/^BenchmarkVirtCustomize-/ {print $3}' <<<"$out")
if [ -n "$patch" ] && [ -n "$virt" ]; then
  awk -v p="$patch" -v v="$virt" 'BEGIN { printf "image patch: %.3f s   virt-customize: %.2f s   ratio: %.0fx\n", p/1e9, v/1e9, v/p }'
fi

if [ -f tests/bench/boot.py ]; then
  echo "== boot to backdoor and backdoor round trips"
  bin/distrotest run --image debian/13 tests/bench/boot.py
fi

echo "== all backdoors ready for 1, 2 and 4 nodes"
bash scripts/bench-nodes.sh
