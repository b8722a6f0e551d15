#!/usr/bin/env bash
# Tests the Nix layer (flake.nix, lib/, tests/default.nix) with the real nix
# binary (Debian's nix-bin; scripts/setup.sh installs it) on a machine that
# cannot fetch nixpkgs: evaluation and builds use tests/nix/stand-in.nix, a
# small package set made of host tools, in place of nixpkgs.
#
#   1 parse        every .nix file parses
#   2 lock         flake.lock: version 7, nixpkgs pinned as documented, nix reads it
#   3 eval         interface and driver.json checks (driver.json is exactly the Go
#                  tests' golden file), error messages (tests/nix/eval.nix;
#                  read-write: one check reads a source the stand-in copies to the store)
#   3b real lib    with DISTROTEST_NIXPKGS=<a nixpkgs or nixpkgs.lib tree>: the real lib
#                  in place of the stand-in's (scripts/check-real-nixpkgs.sh)
#   4 vendor       vendorHash = NAR hash of `go mod vendor` (scripts/check-vendor-hash.sh)
#   5 sources      per-binary source lists agree with `go list -deps`
#   6 plumbing     sandboxed/driver/driverInteractive with a fake runner (tests/nix/plumbing.nix)
#   7 packages     distrotest, distrotest-gen and distrotest-patcher (no embedded
#                  descriptions) built by lib/package.nix in the sandbox
#                  (distrotest wrapped with qemu, python3, distrotest-gen); the
#                  distrotest-gen-drift check; the distrotest-go-test check: the
#                  Go unit tests as the Nix build user (nixbld), HOME nonexistent
#   7b oci         the containerDisk fixed-output derivation (lib/fetch-containerdisk.nix)
#                  built against a docker-registry started on 127.0.0.1 (tests/nix/oci.nix)
#   8 e2e          vmTest from the local debian/13 qcow2 with no distro named (its image
#                  identified by its os-release, prepared and its test booted in
#                  the sandbox); a debian/13 VM
#                  under TCG inside the Nix sandbox with a relative
#                  diskSize ("+2G": disk, root partition and file system grown),
#                  then driver (with QEMU_OPTS and the internet route) and
#                  driverInteractive on the host, then makeTest with two machines
#                  on a VLAN in the sandbox, then two checks restored from
#                  one snapshot derivation built once (tests/nix/e2e.nix)
#
# The stand-in stage uses Debian 12's nix 2.8. The pinned nixpkgs itself
# needs Nix >= 2.18 (its lib/minfeatures.nix refuses older versions), so
# nothing here evaluates real nixpkgs; docs/flake.md says what that leaves
# unverified.
#
# Usage: scripts/check-nix.sh [--no-vm] [--single | --multi]
#   --no-vm   stages 1-7 only (no VM boots)
#   --single  no two-machine test (--multi, the default, runs it)
# Needs root (or sudo) for sandboxed builds into /nix/store. Ends with
# "nix: N passed, M failed"; exit status 1 when anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

no_vm=false
multi=true
for arg in "$@"; do
  case $arg in
    --no-vm) no_vm=true ;;
    --single) multi=false ;;
    --multi) multi=true ;; # the default; accepted for scripts/test.sh
    *)
      echo "usage: scripts/check-nix.sh [--no-vm] [--single | --multi]" >&2
      exit 2
      ;;
  esac
done
nonce=$(date +%s%N)

passed=0
failed=0
pass() {
  echo "PASS $*"
  passed=$((passed + 1))
}
fail() {
  echo "FAIL $*"
  failed=$((failed + 1))
}
finish() {
  echo "nix: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }

tmp=$(mktemp -d /tmp/distrotest-check-nix.XXXXXX)
registry_pid=
trap '[ -z "$registry_pid" ] || kill "$registry_pid" 2>/dev/null; rm -rf "$tmp"' EXIT

# --- environment ------------------------------------------------------------
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then
    sudo=(sudo)
  else
    fail "setup: not root and no passwordless sudo: nix needs to write /nix/store"
    finish
  fi
fi
if ! command -v nix-build >/dev/null; then
  fail "setup: nix-build not found (scripts/setup.sh installs nix-bin)"
  finish
fi
if ! command -v go >/dev/null; then
  fail "setup: go not found"
  finish
fi
nix_version=$(nix --version)
echo "using $nix_version, $(go version)"

gomodcache=$(go env GOMODCACHE)
goroot=$(go env GOROOT)
host_path="$goroot/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
sandbox_paths=""
# /opt/distrotest/virtiofsd: the unprivileged virtiofsd (scripts/install-virtiofsd.sh)
# that the stand-in's virtiofsd package points at
for p in /bin /usr /lib /lib64 /lib32 /libx32 /etc/alternatives /opt/distrotest/virtiofsd "$goroot" "$gomodcache"; do
  [ -e "$p" ] && sandbox_paths+="$p "
done
nixopts=(
  --option sandbox true
  --option sandbox-fallback false # fail rather than silently build unsandboxed
  --option substituters ''
  --option extra-sandbox-paths "$sandbox_paths"
  --option extra-system-features nixos-test # the e2e tests run with kvm = false
  --option experimental-features 'nix-command flakes'
)
nix() { "${sudo[@]}" env -u NIX_PATH nix "${nixopts[@]}" "$@"; }
nix_instantiate() { "${sudo[@]}" nix-instantiate "${nixopts[@]}" "$@"; }
nix_build() { "${sudo[@]}" nix-build "${nixopts[@]}" "$@"; }

# --- 1 parse ----------------------------------------------------------------
nfiles=0
bad=()
while IFS= read -r f; do
  nfiles=$((nfiles + 1))
  if ! nix-instantiate --parse "$f" >/dev/null 2>"$tmp/parse.err"; then
    bad+=("$f: $(head -1 "$tmp/parse.err")")
  fi
done < <(find . -name '*.nix' -not -path './.git/*' -not -path './result*' | sort)
if [ ${#bad[@]} -eq 0 ]; then
  pass "parse: $nfiles .nix files"
else
  fail "parse: ${bad[*]}"
fi

# --- 2 lock -----------------------------------------------------------------
mkdir -p "$tmp/flake"
cp flake.nix flake.lock "$tmp/flake/"
if nix flake metadata --json --offline --no-update-lock-file "path:$tmp/flake" >"$tmp/meta.json" 2>"$tmp/meta.err" &&
  python3 - "$tmp/meta.json" flake.lock <<'EOF'; then
import json, sys
meta = json.load(open(sys.argv[1]))
lock = json.load(open(sys.argv[2]))
want = {"type": "github", "owner": "nixos", "repo": "nixpkgs",
        "rev": "0726a0ecb6d4e08f6adced58726b95db924cef57",
        "narHash": "sha256-EHq1/OX139R1RvBzOJ0aMRT3xnWyqtHBRUBuO1gFzjI=",
        "lastModified": 1776877367}
assert lock["version"] == 7, f"lock version {lock['version']}"
assert list(lock["nodes"]["root"]["inputs"]) == ["nixpkgs"], "nixpkgs must be the only input"
locked = meta["locks"]["nodes"]["nixpkgs"]["locked"]
assert locked == want, f"locked {locked}"
orig = lock["nodes"]["nixpkgs"]["original"]
assert orig == {"type": "github", "owner": "nixos", "repo": "nixpkgs", "ref": "nixos-unstable"}, orig
EOF
  pass "lock: flake.lock v7 pins nixpkgs 0726a0ec (read by nix flake metadata)"
else
  fail "lock: $(cat "$tmp/meta.err" | tail -3)"
fi

# --- 3 eval -----------------------------------------------------------------
t0=$(now)
if nix_instantiate --eval --strict --read-write-mode --json -E '(import ./tests/nix/eval.nix { }).checks' \
  >"$tmp/checks.json" 2>"$tmp/checks.err"; then
  eval_time=$(since "$t0")
  while IFS=$'\t' read -r status name message; do
    if [ "$status" = ok ]; then pass "eval: $name"; else fail "eval: $name: $message"; fi
  done < <(python3 -c '
import json, sys
for name, v in json.load(open(sys.argv[1])).items():
    print("ok" if v is True else "bad", name, "" if v is True else v, sep="\t")
' "$tmp/checks.json")
  echo "     (all eval checks evaluated in $eval_time)"
else
  # one at a time, to name the broken ones
  for name in $(nix-instantiate --eval --json -E 'builtins.attrNames (import ./tests/nix/eval.nix { }).checks' |
    python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)))'); do
    if nix_instantiate --eval --strict --read-write-mode --json -E "(import ./tests/nix/eval.nix { }).checks.\"$name\"" >"$tmp/one" 2>"$tmp/err" &&
      [ "$(cat "$tmp/one")" = true ]; then
      pass "eval: $name"
    else
      fail "eval: $name: $(cat "$tmp/one") $(grep -m1 error: "$tmp/err")"
    fi
  done
fi

# shellcheck source=scripts/eval-errors.sh
. scripts/eval-errors.sh
eval_errors "{ }" "error message"

# Timing of a plain user evaluation: instantiate one test with the real gen/.
t0=$(now)
if nix_instantiate -E 'let pkgs = import ./tests/nix/stand-in.nix { anyImage = ./tests/nix/gen-fixture.nix; goModCache = "/nonexistent"; }; in ((import ./lib { inherit pkgs; }).debian."13" { testScript = "start_all()"; }).sandboxed' \
  >/dev/null 2>"$tmp/err"; then
  pass "eval: instantiate debian.\"13\" sandboxed with gen/ in $(since "$t0")"
else
  fail "eval: instantiate debian.\"13\": $(grep -m1 error: "$tmp/err")"
fi

# --- 3b real lib ------------------------------------------------------------
# With DISTROTEST_NIXPKGS naming a nixpkgs (or nixpkgs.lib) tree: the real
# lib in place of the stand-in's (scripts/check-real-nixpkgs.sh; it also
# evaluates pkgs/ when this nix can). Without it this stage is not run and
# says so: nothing here downloads nixpkgs.
if [ -n "${DISTROTEST_NIXPKGS:-}" ]; then
  if out=$(scripts/check-real-nixpkgs.sh "$DISTROTEST_NIXPKGS" 2>&1); then
    pass "real nixpkgs ($DISTROTEST_NIXPKGS): $(echo "$out" | tail -1)"
  else
    fail "real nixpkgs ($DISTROTEST_NIXPKGS): $(echo "$out" | grep -m3 '^FAIL' | tr '\n' ' ')$(echo "$out" | tail -1)"
  fi
else
  echo "not run: real nixpkgs (set DISTROTEST_NIXPKGS to a nixpkgs or nixpkgs.lib tree: scripts/check-real-nixpkgs.sh)"
fi

# --- 4 vendor ---------------------------------------------------------------
if out=$(scripts/check-vendor-hash.sh 2>&1); then
  pass "vendor: ${out#PASS }"
else
  fail "$(echo "$out" | sed 's/^FAIL //' | head -2 | tr '\n' ' ')"
fi

# --- 5 sources --------------------------------------------------------------
# Each binary's lib.fileset source must hold every Go and embedded file of the
# module's packages it imports; the runnerOnly list must not drop one.
list_of() { awk -v name="$1" '$0 ~ name" = \\[" { on = 1; next } on && /\];/ { on = 0 } on { gsub(/[" ]/, ""); print }' lib/package.nix; }
files_of() {
  go list -deps -f '{{if not .Standard}}{{.Dir}}|{{join .GoFiles " "}} {{join .EmbedFiles " "}}{{end}}' "./cmd/$1" |
    awk -F'|' -v repo="$repo/" 'index($1, repo) == 1 { dir = substr($1, length(repo) + 1); n = split($2, f, " "); for (i = 1; i <= n; i++) print dir "/" f[i] }'
}
internal_of() { files_of "$1" | sed -n 's|^cmd/internal/\([^/]*\)/.*|\1|p' | sort -u; }
src_expr='let pkgs = import ./tests/nix/stand-in.nix { goModCache = "/nonexistent"; }; p = import ./lib/package.nix { inherit (pkgs) lib stdenv buildGoModule installShellFiles makeWrapper qemu_test python3; }; in [ "${p.distrotest.src}" "${p.distrotest-gen.src}" ]'
if srcs=$(nix_instantiate --eval --strict --json -E "$src_expr" 2>"$tmp/err" | python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)))'); then
  read -r src_runner src_gen <<<"$srcs"
  for b in distrotest distrotest-gen; do
    [ "$b" = distrotest ] && src=$src_runner || src=$src_gen
    if ! files=$(files_of "$b" 2>"$tmp/err"); then
      fail "sources: go list -deps ./cmd/$b: $(tail -2 "$tmp/err" | tr '\n' ' ')"
      continue
    fi
    missing=$(while read -r f; do [ -e "$src/$f" ] || echo "$f"; done <<<"$files")
    if [ -z "$missing" ]; then
      pass "sources: $b's source has all $(wc -l <<<"$files") Go and embedded files it builds from"
    else
      fail "sources: $b's source lacks $(echo $missing) (lib/package.nix: runnerOnly or the fileset)"
    fi
  done
  runner_deps=$(internal_of distrotest 2>/dev/null)
  gen_deps=$(internal_of distrotest-gen 2>/dev/null)
  for p in $(comm -23 <(echo "$runner_deps") <(echo "$gen_deps")); do
    list_of runnerOnly | grep -qx "$p" || echo "     note: cmd/internal/$p is used by distrotest only: list it in runnerOnly (lib/package.nix) so that changing it does not rebuild every image"
  done
else
  fail "sources: lib/package.nix sources do not evaluate: $(grep -m1 error: "$tmp/err")"
fi

# --- 6 plumbing -------------------------------------------------------------
t0=$(now)
if nix_build tests/nix/plumbing.nix --argstr nonce "$nonce" -A sandboxed -o "$tmp/plumbing" >"$tmp/build.log" 2>&1; then
  if python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(r["cwd"] != "/build" or r["problems"] != [] or r["internet"])' "$tmp/plumbing/report.json"; then
    pass "plumbing: sandboxed build ran in the sandbox (/build) without --internet and saw every path of driver.json ($(since "$t0"))"
  else
    fail "plumbing: sandboxed report: $(cat "$tmp/plumbing/report.json")"
  fi
else
  fail "plumbing: sandboxed: $(tail -5 "$tmp/build.log")"
fi
mkdir -p "$tmp/hostdir"
if DISTROTEST_PLUMBING_HOST_DIR="$tmp/hostdir" nix_build tests/nix/plumbing.nix --argstr nonce "$nonce" -A driver -A driverInteractive \
  -o "$tmp/plumbing-driver" >"$tmp/build.log" 2>&1; then
  if "$tmp/plumbing-driver/bin/test-driver" --out-dir "$tmp/po1" >"$tmp/run.log" 2>&1 &&
    python3 -c 'import json, sys; sys.exit(not json.load(open(sys.argv[1]))["internet"])' "$tmp/po1/report.json"; then
    pass "plumbing: driver runs on the host with a host share, passing --internet"
  else
    fail "plumbing: driver: $(tail -3 "$tmp/run.log")"
  fi
  if printf 'start_all()\nexit()\n' | "$tmp/plumbing-driver-2/bin/test-driver" --out-dir "$tmp/po2" >"$tmp/run.log" 2>&1 &&
    grep -q '"start_all()"' "$tmp/po2/report.json"; then
    pass "plumbing: driverInteractive passes --interactive and reads stdin"
  else
    fail "plumbing: driverInteractive: $(tail -3 "$tmp/run.log")"
  fi
else
  fail "plumbing: driver builds: $(tail -5 "$tmp/build.log")"
fi

# --- 7 packages -------------------------------------------------------------
packages_expr="let pkgs = import ./tests/nix/stand-in.nix { goModCache = \"$gomodcache\"; hostPath = \"$host_path\"; }; in import ./lib/package.nix { inherit (pkgs) lib stdenv buildGoModule installShellFiles makeWrapper qemu_test python3; }"
t0=$(now)
if nix_build -E "$packages_expr" -A distrotest -A distrotest-gen -o "$tmp/pkg" >"$tmp/build.log" 2>&1; then
  ok=true
  for b in distrotest distrotest-gen; do
    [ "$b" = distrotest ] && d="$tmp/pkg" || d="$tmp/pkg-2"
    for f in "bin/$b" "share/bash-completion/completions/$b.bash" "share/zsh/site-functions/_$b" "share/fish/vendor_completions.d/$b.fish"; do
      [ -s "$d/$f" ] || {
        ok=false
        fail "packages: $b lacks $f"
      }
    done
    "$d/bin/$b" --help >/dev/null 2>&1 || {
      ok=false
      fail "packages: $b --help fails"
    }
  done
  # The wrapper puts everything distrotest executes on its PATH.
  wrapper_path=$(sed -n 's/^export PATH=\([^$]*\).*/\1/p' "$tmp/pkg/bin/distrotest" | tr -d "'" | sed 's/:$//')
  for prog in qemu-system-x86_64 qemu-img python3 distrotest-gen; do
    PATH="$wrapper_path" command -v "$prog" >/dev/null || {
      ok=false
      fail "packages: distrotest's wrapper PATH ($wrapper_path) has no $prog"
    }
  done
  $ok && pass "packages: distrotest and distrotest-gen built in the sandbox with vendorHash, completions installed, distrotest wrapped with qemu-system/qemu-img, python3, distrotest-gen ($(since "$t0"))"
else
  fail "packages: $(grep -v '^building' "$tmp/build.log" | tail -6 | tr '\n' ' ')"
fi

t0=$(now)
if nix_build -E "$packages_expr" -A distrotest-patcher -o "$tmp/patcher" >"$tmp/build.log" 2>&1; then
  # built with -tags distrotest_noembed: no descriptions inside, facts from --spec only
  if out=$("$tmp/patcher/bin/distrotest-gen" image patch --distro debian/13 /dev/null -o "$tmp/none" 2>&1) ||
    ! grep -q 'no \*.hcl files' <<<"$out"; then
    fail "packages: distrotest-patcher still knows debian/13 (embedded descriptions?): $out"
  else
    pass "packages: distrotest-patcher built without embedded descriptions ($(since "$t0"))"
  fi
else
  fail "packages: distrotest-patcher: $(grep -v '^building' "$tmp/build.log" | tail -6 | tr '\n' ' ')"
fi

t0=$(now)
drift_expr="(import ./tests { pkgs = import ./tests/nix/stand-in.nix { goModCache = \"$gomodcache\"; hostPath = \"$host_path\"; }; }).distrotest-gen-drift"
if nix_build -E "$drift_expr" --no-out-link >"$tmp/build.log" 2>&1; then
  pass "packages: check distrotest-gen-drift builds: gen/ is up to date ($(since "$t0"))"
else
  fail "packages: check distrotest-gen-drift: $(grep -v '^building' "$tmp/build.log" | tail -6 | tr '\n' ' ')"
fi

# The Go unit tests as flake check `distrotest-go-test` runs them: in the
# sandbox, as a nixbld user, HOME=/homeless-shelter (VM tests skip).
t0=$(now)
gotest_expr="(import ./tests { pkgs = import ./tests/nix/stand-in.nix { goModCache = \"$gomodcache\"; hostPath = \"$host_path\"; }; }).distrotest-go-test"
# (a result from an earlier run with the same sources is reused, as nix
# flake check would)
if nix_build -E "$gotest_expr" --no-out-link >"$tmp/build.log" 2>&1; then
  pass "packages: check distrotest-go-test builds: the Go unit tests pass as the Nix build user ($(since "$t0"))"
else
  fail "packages: check distrotest-go-test ($(since "$t0")): $(grep -E -- '^failed:|--- FAIL|panic:' "$tmp/build.log" | head -12 | tr '\n' ' ')"
fi

# --- 7b oci -----------------------------------------------------------------
# A small disk with fresh random bytes (so the store cannot have it yet) is
# pushed as a containerDisk to a registry on 127.0.0.1; the fixed-output
# derivation fetches it by digest, through the distro data and directly, and
# must hold the same bytes; a wrong hash must fail the build.
oci_check() {
  local d="$tmp/oci" port ref sri t0
  mkdir -p "$d"
  for tool in docker-registry sgdisk; do
    command -v "$tool" >/dev/null || {
      fail "oci: $tool not installed (scripts/setup.sh installs it)"
      return
    }
  done
  if ! go build -o "$d/" ./cmd/distrotest-gen 2>"$d/err"; then
    fail "oci: go build: $(tail -3 "$d/err")"
    return
  fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n  secret: distrotest-check-nix\n' \
    "$d/data" "$port" >"$d/config.yml"
  docker-registry serve "$d/config.yml" >"$d/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  truncate -s 8M "$d/disk.raw"
  sgdisk -o -n 1:2048:0 "$d/disk.raw" >/dev/null 2>&1
  head -c 65536 /dev/urandom | dd of="$d/disk.raw" bs=64k seek=32 conv=notrunc status=none
  sri=$(python3 -c 'import base64, hashlib, sys; print("sha256-" + base64.b64encode(hashlib.sha256(open(sys.argv[1], "rb").read()).digest()).decode())' "$d/disk.raw")
  if ! ref=$("$d/distrotest-gen" image push --containerdisk "$d/disk.raw" "127.0.0.1:$port/check/disk:1" 2>"$d/err"); then
    fail "oci: push: $(tail -3 "$d/err") $(tail -3 "$d/registry.log")"
  else
    ref="127.0.0.1:$port/check/disk@${ref##*@}"
    local args=(tests/nix/oci.nix --argstr goModCache "$gomodcache" --argstr hostPath "$host_path" --argstr ref "$ref")
    t0=$(now)
    if nix_build "${args[@]}" --argstr hash "$sri" -A base -A direct -o "$d/result" >"$d/build.log" 2>&1; then
      if cmp -s "$d/disk.raw" "$d/result" && cmp -s "$d/disk.raw" "$d/result-2"; then
        pass "oci: fixed-output derivation by digest from a registry on 127.0.0.1, through the distro data and fetchContainerDisk ($(since "$t0"))"
      else
        fail "oci: the fetched disk differs from the pushed one"
      fi
    else
      fail "oci: build: $(grep -v '^building' "$d/build.log" | tail -6 | tr '\n' ' ')"
    fi
    local wrong
    wrong=$(python3 -c 'import base64, hashlib; print("sha256-" + base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode())')
    if nix_build "${args[@]}" --argstr hash "$wrong" -A direct --no-out-link >"$d/build.log" 2>&1; then
      fail "oci: a wrong hash built"
    elif grep -q "hash mismatch" "$d/build.log"; then
      pass "oci: a wrong hash fails the fixed-output derivation (hash mismatch)"
    else
      fail "oci: wrong hash: $(grep -v '^building' "$d/build.log" | tail -4 | tr '\n' ' ')"
    fi
  fi
  kill "$registry_pid" 2>/dev/null
  wait "$registry_pid" 2>/dev/null
  registry_pid=
}
oci_check

# --- 8 e2e ------------------------------------------------------------------
if $no_vm; then
  echo "NOTE e2e: no VM booted (--no-vm)"
  finish
fi
t0=$(now)
if ! image=$(go run ./cmd/distrotest-gen image build debian/13 2>"$tmp/image.err"); then
  fail "e2e: building the debian/13 image: $(tail -3 "$tmp/image.err")"
  finish
fi
echo "     image $image (ready in $(since "$t0"))"
image_bytes=$(qemu-img info --output=json "$image" | python3 -c 'import json, sys; print(json.load(sys.stdin)["virtual-size"])')
e2e=(tests/nix/e2e.nix --argstr goModCache "$gomodcache" --argstr image "$image" --argstr hostPath "$host_path" --argstr nonce "$nonce" --arg imageBytes "$image_bytes")

t0=$(now)
if nix_build "${e2e[@]}" -A image -o "$tmp/prepared" >"$tmp/build.log" 2>&1; then
  pass "e2e: prepared image (distrotest-gen image patch in the sandbox, $(since "$t0"))"
else
  fail "e2e: prepared image: $(grep -v '^building' "$tmp/build.log" | tail -6 | tr '\n' ' ')"
fi

t0=$(now)
if nix_build "${e2e[@]}" -A vmtest.image -o "$tmp/vmtest-image" >"$tmp/build.log" 2>&1 &&
  grep -q '"release": "13"' "$tmp/vmtest-image/manifest.json"; then
  pass "e2e: vmTest image: a qcow2 with no distro named prepared as debian/13 from its os-release ($(since "$t0"))"
else
  fail "e2e: vmTest image: $(grep -v '^building' "$tmp/build.log" | tail -6 | tr '\n' ' ')"
fi
t0=$(now)
if nix_build "${e2e[@]}" -A vmtest.sandboxed -o "$tmp/vmtest" >"$tmp/build.log" 2>&1; then
  pass "e2e: vmTest sandboxed: that image booted under TCG in the Nix sandbox, its os-release checked by the script ($(since "$t0"))"
else
  fail "e2e: vmTest sandboxed ($(since "$t0")): $(tail -15 "$tmp/build.log")"
fi

t0=$(now)
if nix_build "${e2e[@]}" -A sandboxed -o "$tmp/e2e" >"$tmp/build.log" 2>&1; then
  pass "e2e: sandboxed: debian/13 booted under TCG in the Nix sandbox, diskSize \"+2G\" grew the disk, root partition and file system (df), no default route; test script passed ($(since "$t0"))"
  grep -h "^.*disk [0-9]* bytes, root partition" "$tmp/e2e"/vm/console.log "$tmp/build.log" 2>/dev/null | head -1 | sed 's/^/     /'
else
  fail "e2e: sandboxed ($(since "$t0")): $(tail -15 "$tmp/build.log")"
fi

if nix_build "${e2e[@]}" -A driver -A driverInteractive -o "$tmp/e2e-driver" >"$tmp/build.log" 2>&1; then
  t0=$(now)
  serial="distrotest-e2e-$nonce"
  if QEMU_OPTS="-smbios type=1,serial=$serial" DISTROTEST_E2E_SERIAL="$serial" \
    "$tmp/e2e-driver/bin/test-driver" --out-dir "$tmp/e2e-out" >"$tmp/run.log" 2>&1; then
    pass "e2e: driver ran the test on the host; QEMU_OPTS reached QEMU (SMBIOS serial seen in the guest), default route through the user-mode NAT ($(since "$t0"))"
  else
    fail "e2e: driver: $(tail -10 "$tmp/run.log")"
  fi
  t0=$(now)
  if printf '%s\n' 'start_all()' 'print("interactive:", vm.succeed("echo ok").strip())' 'exit()' |
    timeout 600 "$tmp/e2e-driver-2/bin/test-driver" --out-dir "$tmp/e2e-out2" >"$tmp/run.log" 2>&1 &&
    grep -q 'interactive: ok' "$tmp/run.log"; then
    pass "e2e: driverInteractive driven through a pipe ($(since "$t0"))"
  else
    fail "e2e: driverInteractive: $(tail -10 "$tmp/run.log")"
  fi
else
  fail "e2e: driver builds: $(tail -5 "$tmp/build.log")"
fi

# boot once, restore many: two checks of one shape share one snapshot
# derivation, built once (it does not depend on the nonce: later runs find
# it in the store), and both restore from it
t0=$(now)
snapA=$(nix_instantiate "${e2e[@]}" -A restoreA.sandboxed.snapshots 2>/dev/null)
snapB=$(nix_instantiate "${e2e[@]}" -A restoreB.sandboxed.snapshots 2>/dev/null)
if [ -z "$snapA" ] || [ "$snapA" != "$snapB" ]; then
  fail "e2e: restore: the two checks have different snapshot derivations: '$snapA' '$snapB'"
elif nix_build "${e2e[@]}" -A restoreA.sandboxed -A restoreB.sandboxed -o "$tmp/e2e-restore" >"$tmp/build.log" 2>&1; then
  builds=$(grep -c "^building '${snapA}'" "$tmp/build.log")
  if [ "$builds" -le 1 ]; then
    pass "e2e: restore: two checks restored from one snapshot derivation (${snapA##*/}, built $builds time(s) in this run), each with its identity ($(since "$t0"))"
  else
    fail "e2e: restore: the snapshot derivation was built $builds times"
  fi
else
  fail "e2e: restore ($(since "$t0")): $(tail -15 "$tmp/build.log")"
fi

if $multi; then
  t0=$(now)
  if nix_build "${e2e[@]}" -A multi.sandboxed -o "$tmp/e2e-multi" >"$tmp/build.log" 2>&1; then
    pass "e2e: makeTest, two machines on a VLAN in the sandbox: ping, block, unblock ($(since "$t0"))"
  else
    fail "e2e: makeTest ($(since "$t0")): $(tail -15 "$tmp/build.log")"
  fi
else
  echo "NOTE e2e: two-machine VLAN test not run (--single)"
fi

finish
