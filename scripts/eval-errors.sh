# Sourced by scripts/check-nix.sh and scripts/check-real-nixpkgs.sh: the
# error-message checks of tests/nix/eval.nix. Each errors.<name> is evaluated
# on its own (a message can only be read from nix's stderr) and must fail
# with its `expect` text. The caller defines pass, fail, nix_instantiate and
# $tmp.
#
#   eval_errors ARGS LABEL   ARGS: eval.nix's arguments as a Nix attrset
eval_errors() {
  local args=$1 label=$2 name expect names
  names=$(nix-instantiate --eval --json -E 'builtins.attrNames (import ./tests/nix/eval.nix { }).errors' |
    python3 -c 'import json, sys; print(" ".join(json.load(sys.stdin)))')
  for name in $names; do
    expect=$(nix-instantiate --eval --json -E "(import ./tests/nix/eval.nix { }).errors.\"$name\".expect" |
      python3 -c 'import json, sys; print(json.load(sys.stdin))')
    if nix_instantiate --eval --strict --read-write-mode -E "(import ./tests/nix/eval.nix $args).errors.\"$name\".value" \
      >/dev/null 2>"$tmp/err"; then
      fail "$label: $name: evaluated without an error"
    elif grep -qF -- "$expect" "$tmp/err"; then
      pass "$label: $name"
    else
      fail "$label: $name: want \"$expect\", got: $(grep -m1 error: "$tmp/err")"
    fi
  done
}
