# distrotest's Nix library, for one system.
#
#   import ./lib { pkgs = import nixpkgs { }; }
#   → { <distro> = { images; "<version>" = args: { sandboxed; driver; driverInteractive; image; }; };
#       makeTest = { name; nodes; testScript; ... }: { sandboxed; driver; driverInteractive; };
#       vmTest = { image; testScript; distro ? null; ... }: { sandboxed; driver; driverInteractive; image; };
#       fetchContainerDisk = { ref; hash; name ? …; }: <the disk of a KubeVirt containerDisk>; }
#
# This file only wires the pieces together: package.nix (the Go binaries),
# images.nix (base and prepared images), releases.nix (which releases are
# offered, version spellings), nodes.nix (a machine's arguments → driver.json),
# outputs.nix (driver.json → sandboxed, driver, driverInteractive), snapshot.nix
# (the machines' shapes booted once, for restoring),
# make-test.nix (makeTest, the per-release function, vmTest), prepare-image.nix
# (distrotest-gen image patch of one image), fetch-containerdisk.nix, distros.nix
# (lib.<system>.<distro>).
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
      makeWrapper
      qemu_test
      python3
      virtiofsd
      ;
  };

  fetchContainerDisk = import ./fetch-containerdisk.nix {
    inherit (pkgs) lib runCommand;
    inherit (packages) distrotest-gen;
    cacert = pkgs.cacert or null;
    inherit system;
  };

  prepare = import ./prepare-image.nix {
    inherit (pkgs) lib runCommand;
    inherit (packages) distrotest-gen distrotest-patcher;
    inherit system;
  };

  releases = import ./images.nix {
    inherit (pkgs) lib fetchurl;
    inherit
      fetchContainerDisk
      prepare
      system
      gen
      ;
  };

  lookup = import ./releases.nix {
    inherit lib releases gen system;
  };

  nodes = import ./nodes.nix {
    inherit lib lookup releases;
    inherit (pkgs) closureInfo;
  };

  snapshot = import ./snapshot.nix {
    inherit (pkgs)
      lib
      runCommand
      writeText
      qemu_test
      python3
      ;
    inherit (packages) distrotest;
  };

  outputs = import ./outputs.nix {
    inherit (pkgs)
      lib
      runCommand
      writeText
      writeShellApplication
      qemu_test
      python3
      tesseract
      ;
    inherit (packages) distrotest;
    inherit snapshot;
  };

  tests = import ./make-test.nix {
    inherit
      lib
      nodes
      outputs
      lookup
      prepare
      releases
      ;
  };

  distros = import ./distros.nix {
    inherit (tests) single;
    inherit lookup releases gen;
  };
in
distros // { inherit (tests) makeTest vmTest; inherit fetchContainerDisk; }
