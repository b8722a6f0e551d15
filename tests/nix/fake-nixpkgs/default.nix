# A nixpkgs source tree as lib.nix imports it (`import nixpkgs { inherit
# system; }`), made of the stand-in package set, for tests/nix/eval.nix.
{ system }:
import ../stand-in.nix {
  inherit system;
  anyImage = ../gen-fixture.nix; # nothing is built
  goModCache = "/nonexistent";
}
