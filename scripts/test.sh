#!/usr/bin/env bash
# Everything CI runs (`make test`, called by .ci/run). Prints a line per stage
# and ends non-zero when any stage fails. VM tests always run here, under TCG
# unless a KVM that really boots is found.
set -uo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS=${GOFLAGS:--mod=mod}
# A test that needs a host tool fails here instead of skipping (internal/testenv).
export DISTROTEST_REQUIRE_TOOLS=1
failed=()
stage() {
  local name=$1; shift
  local start=$SECONDS
  echo "=== stage: $name"
  if "$@"; then
    echo "=== stage: $name: ok ($((SECONDS - start)) s)"
  else
    echo "=== stage: $name: FAILED ($((SECONDS - start)) s)"
    failed+=("$name")
  fi
}

stage lint make -s lint
stage generated go run ./cmd/distrotest-gen gen --check
stage vendor-hash bash scripts/check-vendor-hash.sh
stage build go build -o bin/ ./cmd/distrotest ./cmd/distrotest-gen
# Base images are built once per machine (cached in ~/.cache/distrotest):
# Debian 12/13, Debian 13 with Nix (extraPathsToRegister) and the stand-in
# family shapes (tests/e2e TestShapes, machine TestVMSharesNo9P).
build_images() {
  local pids=() rc=0 img
  for img in debian/13 debian/12 shape/el shape/fedora shape/ubuntu; do
    bin/distrotest-gen image build "$img" >/dev/null & pids+=($!)
  done
  bin/distrotest-gen image build debian/13 --packages nix-bin >/dev/null & pids+=($!)
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}
stage images build_images
stage unit go test -count=1 ./...
prepared=$(bin/distrotest-gen image prepare debian/13) || failed+=(prepare)
# a guest with Nix, for extraPathsToRegister (TestVMNixRegistration)
nix_prepared=$(bin/distrotest-gen image prepare debian/13 --packages nix-bin) || failed+=(prepare-nix)
# the EL shape: a kernel without 9p (virtiofs only)
no9p_prepared=$(bin/distrotest-gen image prepare shape/el) || failed+=(prepare-el)
stage vm env DISTROTEST_VM_TESTS=1 DISTROTEST_TEST_IMAGE="$prepared" DISTROTEST_TEST_NIX_IMAGE="$nix_prepared" DISTROTEST_TEST_NO9P_IMAGE="$no9p_prepared" go test -count=1 -timeout 50m -p 1 -parallel 2 -v ./tests/e2e/ ./tests/compat/ ./cmd/internal/machine/ ./cmd/internal/imagebuild/ ./cmd/internal/qemu/
stage nix bash scripts/check-nix.sh --multi

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED stages: ${failed[*]}"
  exit 1
fi
echo "all stages passed"
