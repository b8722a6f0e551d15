# distrotest's Nix library, for one system.
#
#   import ./lib { pkgs = import nixpkgs { }; }
#   → { <distro> = { images; "<version>" = args: { sandboxed; driver; driverInteractive; image; }; };
#       makeTest = { name; nodes; testScript; ... }: { sandboxed; driver; driverInteractive; }; }
#
# This file only wires the pieces together; see make-test.nix (tests),
# images.nix (images), package.nix (the Go binaries).
{
  pkgs,
  # the generated distro data; tests pass their own
  gen ? import ../gen,
}:
let
  inherit (pkgs) lib;
  system = pkgs.stdenv.hostPlatform.system;

  packages = import ./package.nix {
    inherit (pkgs)
      lib
      stdenv
      buildGoModule
      installShellFiles
      qemu
      python3
      ;
  };

  releases = import ./images.nix {
    inherit (pkgs)
      lib
      fetchurl
      runCommand
      ;
    inherit (packages) distrotest-gen;
    inherit system gen;
  };

  tests = import ./make-test.nix {
    inherit (pkgs)
      lib
      runCommand
      writeText
      writeShellApplication
      qemu_test
      qemu
      python3
      tesseract
      ;
    inherit (packages) distrotest;
    inherit releases system;
  };
in
tests.distros // { inherit (tests) makeTest; }
