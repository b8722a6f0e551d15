# The sandbox plumbing of lib/outputs.nix without the Go binaries: a fake
# `distrotest` reads driver.json the way the runner does and checks that
# everything it names is reachable where it runs (inside the Nix sandbox for
# `sandboxed`, on the host for `driver`/`driverInteractive`), then writes a
# report into --out-dir. scripts/check-nix.sh builds and runs these.
{
  system ? "x86_64-linux",
  # changes the derivations so that each run of scripts/check-nix.sh rebuilds them
  nonce ? "",
}:
let
  pkgs = import ./stand-in.nix { inherit system; };

  fakeRunner = pkgs.writeShellApplication {
    name = "distrotest";
    runtimeInputs = [ pkgs.python3 ];
    text = ''
      exec python3 ${./fake-runner.py} "$@"
    '';
  };

  prepared =
    pkgs.runCommand "distrotest-debian-13-prepared" { }
      ''
        mkdir -p "$out"
        echo '{"version": 1, "distro": "debian", "release": "13"}' > "$out/manifest.json"
        echo qcow2 > "$out/disk.qcow2"
      '';

  releases.debian."13" = {
    release = { };
    base = prepared;
    inherit prepared;
  };

  # lib/default.nix's wiring, with the fake runner and prepared image
  inherit (pkgs) lib;
  gen = import ./gen-fixture.nix;
  lookup = import ../../lib/releases.nix { inherit lib releases gen system; };
  nodes = import ../../lib/nodes.nix {
    inherit lib lookup releases;
    inherit (pkgs) closureInfo;
  };
  outputs = import ../../lib/outputs.nix {
    inherit (pkgs)
      lib
      runCommand
      writeText
      writeShellApplication
      qemu_test
      python3
      tesseract
      ;
    distrotest = fakeRunner;
    # restore = false below: the fake runner makes no snapshots
    snapshot = throw "tests/nix/plumbing.nix: snapshots are not part of the plumbing test";
  };
  tests = import ../../lib/make-test.nix {
    inherit
      lib
      nodes
      outputs
      lookup
      releases
      ;
    # only vmTest prepares images; the plumbing test has its fake one
    prepare = throw "tests/nix/plumbing.nix: vmTest is not part of the plumbing test";
  };

  share = pkgs.runCommand "distrotest-plumbing-share" { } ''
    mkdir -p "$out"
    echo "hello from the store" > "$out/hello.txt"
  '';
  registered = pkgs.writeText "distrotest-plumbing-registered" "registered";
  hostDir = builtins.getEnv "DISTROTEST_PLUMBING_HOST_DIR";
in
tests.single "debian" "13" {
  name = "plumbing";
  kvm = false;
  restore = false;
  sharedDirs = {
    store = {
      source = share;
      target = "/mnt/store";
    };
  }
  // (
    if hostDir != "" then
      {
        host = {
          source = hostDir;
          target = "/mnt/host";
        };
      }
    else
      { }
  );
  extraPathsToRegister = [ registered ];
  testScript = ''
    # read by the fake runner: a store path the script names must be visible
    # ${share}
    # run ${nonce}
  '';
}
