#!/usr/bin/env bash
# Usage: bench/restore.sh [IMAGE] [NODES...]
#
# Boot once, restore many, in one run: the same test script with 1, 2 and 4
# machines (default NODES: 1 2 4) on one VLAN, booted cold (--no-restore)
# and restored from the snapshot of their shape, printed side by side. The
# script (tests/bench/restore.py) times start_all() until every machine
# answered its first command, then does the test's work (each machine pings
# every other by name and writes to its share); "whole test" is the wall
# time of `distrotest run` (QEMU probe, machines, script, teardown). The
# snapshot is made before the restored runs, in a cache of its own (its time
# is printed apart: it is one cold boot plus the save, paid once per shape).
#
# IMAGE is a prepared image directory or DISTRO/RELEASE (default debian/13).
# Needs a virtiofsd (scripts/install-virtiofsd.sh): the shares of restored
# machines are virtiofs devices added after the restore.
set -euo pipefail

image=${1:-debian/13}
shift || true
nodes=("$@")
[ ${#nodes[@]} -gt 0 ] || nodes=(1 2 4)
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/distrotest-bench-restore.XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$repo" && go build -o "$work/bin/" ./cmd/distrotest ./cmd/distrotest-gen)
if [ -d "$image" ]; then
  prepared=$image
else
  prepared=$("$work/bin/distrotest-gen" image prepare "$image")
fi

# driver.json for n machines m1..mn on VLAN 1.
config() {
  local n=$1 i machines=
  for ((i = 1; i <= n; i++)); do
    machines+="${machines:+,}{\"name\": \"m$i\", \"image\": \"$prepared\", \"vlans\": [1]}"
  done
  python3 - "$repo/tests/bench/restore.py" "$n" "$machines" >"$work/driver-$n.json" <<'PY'
import json, sys
print(json.dumps({"version": 1, "name": "bench-restore-" + sys.argv[2], "test_script": sys.argv[1],
                  "machines": json.loads("[" + sys.argv[3] + "]")}))
PY
}

# run MODE N: one run; prints "first_s whole_s"
run() {
  local mode=$1 n=$2 flags=() log=$work/$1-$2.log start end first
  [ "$mode" = cold ] && flags=(--no-restore)
  start=$(date +%s.%N)
  XDG_CACHE_HOME=$work/cache "$work/bin/distrotest" run --config "$work/driver-$n.json" --out-dir "$work/out-$mode-$n" \
    --share-transport virtiofs "${flags[@]}" >"$log" 2>&1 || { echo "run $mode $n failed:" >&2; tail -30 "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  first=$(sed -n 's/.*BENCH first command: \([0-9.]*\) s.*/\1/p' "$log" | head -1)
  echo "$first $(python3 -c "print(f'{$end - $start:.1f}')")"
}

# The image cache is shared (images, the KVM probe); snapshots go to the
# bench's own cache so that the first restored run measures a restore.
mkdir -p "$work/cache/distrotest"
[ ! -d "$HOME/.cache/distrotest/qemu" ] || ln -s "$HOME/.cache/distrotest/qemu" "$work/cache/distrotest/qemu"
for n in "${nodes[@]}"; do config "$n"; done

echo "== making the snapshot (one cold boot of the shape, then the save)" >&2
s0=$(date +%s.%N)
run restored "${nodes[0]}" >/dev/null
s1=$(date +%s.%N)
snapshot_s=$(python3 -c "print(f'{$s1 - $s0:.1f}')")

printf '%-9s | %-28s | %-28s\n' "machines" "first command: cold / restored" "whole test: cold / restored"
for n in "${nodes[@]}"; do
  read -r cf cw < <(run cold "$n")
  read -r rf rw < <(run restored "$n")
  printf '%-9s | %8s s / %8s s        | %8s s / %8s s\n' "$n" "$cf" "$rf" "$cw" "$rw"
done
echo "(the snapshot itself, made once before: ${snapshot_s} s for a whole run that made it and restored from it)"
