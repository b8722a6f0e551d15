# Non-flake entry point, as nix-vm-test's lib.nix (system-manager imports it
# this way):
#
#   import "${distrotest}/lib.nix" { nixpkgs = <nixpkgs source>; system = "x86_64-linux"; }
#   → the same set as the flake's lib.<system>: debian, ubuntu, ..., makeTest
#
# `nixpkgs` is a nixpkgs source tree (a path, or a flake input, which has an
# outPath). With nixpkgs already imported, use `import ./lib { inherit pkgs; }`.
{ nixpkgs, system }:
if !(builtins.isPath nixpkgs || builtins.isString nixpkgs || (builtins.isAttrs nixpkgs && nixpkgs ? outPath)) then
  throw "distrotest lib.nix: `nixpkgs` must be a nixpkgs source (a path or a flake input), got a ${builtins.typeOf nixpkgs}"
else if !builtins.isString system then
  throw "distrotest lib.nix: `system` must be a string such as \"x86_64-linux\", got a ${builtins.typeOf system}"
else
  import ./lib { pkgs = import nixpkgs { inherit system; }; }
