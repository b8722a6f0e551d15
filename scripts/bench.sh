#!/usr/bin/env bash
# Benchmarks, each against a baseline measured in the same run:
#  - image patch vs virt-customize making the same edits (needs scripts/setup.sh --bench)
#  - boot to backdoor and commands per second (distrotest run, tests/bench/boot.py)
#  - 9p against virtiofs for the store and shares (bench/shares.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/ ./cmd/distrotest ./cmd/distrotest-gen
img=$(bin/distrotest-gen image build debian/13)

echo "== image patch vs virt-customize on $img"
bash bench/patch-vs-virt-customize.sh "$img"

if [ -f tests/bench/boot.py ]; then
  echo "== boot to backdoor and backdoor round trips"
  bin/distrotest run --image debian/13 tests/bench/boot.py
fi

echo "== all backdoors ready for 1, 2 and 4 nodes"
bash scripts/bench-nodes.sh

echo "== store and shares: 9p vs virtiofs, 100 MiB and 10 000 small files read cold"
bash bench/shares.sh "$(bin/distrotest-gen image prepare debian/13)"
