#!/usr/bin/env bash
# Usage: bench/shares.sh [IMAGE]
#
# 9p against virtiofs on the same prepared image in one run: a 100 MiB file
# and a tree of 10 000 small files (1 KiB, in 100 directories), read cold,
# through the Nix store mount (9p cache=loose / virtiofsd --cache=always, as
# the runner mounts /nix/.ro-store) and through a share (9p default cache /
# virtiofsd --cache=auto, as the runner mounts shared_dirs). One boot per
# transport; each read is timed inside the guest (date +%s%N around it,
# no backdoor round trip in the figure) after `echo 3 >drop_caches` in the
# guest; the host's page cache is warm for both. Prints the median of RUNS
# (default 3) per case and the ratio 9p / virtiofs (> 1: virtiofs faster).
#
# IMAGE is a prepared image directory or DISTRO/RELEASE (default debian/13).
# Needs a virtiofsd (scripts/install-virtiofsd.sh).
set -euo pipefail

image=${1:-debian/13}
runs=${RUNS:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/distrotest-bench-shares.XXXXXX")
trap 'rm -rf "$work"' EXIT

(cd "$repo" && go build -o "$work/bin/" ./cmd/distrotest ./cmd/distrotest-gen)

data=$work/data
mkdir -p "$data/tree"
head -c $((100 << 20)) /dev/urandom >"$data/big"
python3 - "$data/tree" <<'PY'
import os, sys
root = sys.argv[1]
block = os.urandom(1024)
for d in range(100):
    os.mkdir(os.path.join(root, f"d{d:02}"))
    for f in range(100):
        with open(os.path.join(root, f"d{d:02}", f"f{f:02}"), "wb") as fh:
            fh.write(block)
PY
cat "$data/big" >/dev/null
find "$data/tree" -type f -exec cat {} + >/dev/null

cat >"$work/bench.py" <<PY
machine.succeed("true")
cold = "sync; echo 3 >/proc/sys/vm/drop_caches; "
def timed(cmd):
    out = machine.succeed(cold + "s=\$(date +%s%N); " + cmd + " >/dev/null; e=\$(date +%s%N); echo \$(( (e - s) / 1000000 ))")
    return int(out.strip()) / 1000
for mount, path in [("store", "/nix/store"), ("share", "/mnt/data")]:
    n = int(machine.succeed("find " + path + "/tree -type f | wc -l"))
    assert n == 10000, n
    for what, cmd in [("100MiB", "cat " + path + "/big"),
                      ("10000files", "find " + path + "/tree -type f -exec cat {} +")]:
        for i in range($runs):
            print("RESULT", mount, what, timed(cmd), flush=True)
PY

results=$work/results
: >"$results"
for transport in 9p virtiofs; do
  echo "== $transport: booting $image" >&2
  (cd "$work" && "$work/bin/distrotest" run --image "$image" --accel tcg --share-transport "$transport" \
    --nix-store "$data" --share "data=$data:/mnt/data:ro" --out-dir "$work/out-$transport" "$work/bench.py" 2>"$work/log-$transport") |
    sed -n "s/^RESULT /$transport /p" | tee -a "$results" >&2 ||
    { tail -20 "$work/log-$transport" >&2; exit 1; }
done

python3 - "$results" <<'PY'
import statistics, sys
r = {}
for line in open(sys.argv[1]):
    t, mount, what, secs = line.split()
    r.setdefault((mount, what), {}).setdefault(t, []).append(float(secs))
print(f"{'read, cold':<24} {'9p (s)':>9} {'virtiofs (s)':>13} {'9p/virtiofs':>12}")
for (mount, what), v in r.items():
    a, b = statistics.median(v["9p"]), statistics.median(v["virtiofs"])
    print(f"{mount + ' ' + what:<24} {a:>9.2f} {b:>13.2f} {a / b:>11.2f}x")
PY
