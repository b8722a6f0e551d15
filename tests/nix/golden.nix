# The golden driver.json: the config the Nix library writes for one fixed
# declaration that uses every driver.json key the library produces, with
# store hashes replaced by a placeholder (they follow the Go sources).
# tests/nix/eval.nix (golden-driver-json) checks that the library produces
# exactly cmd/internal/driver/testdata/golden/driver.json, which the Go
# tests decode, validate and derive the guest identities from
# (TestGoldenDriverJSON). After a change to the contract, rewrite the file
# with
#
#   nix-instantiate --eval --strict --json -E 'import ./tests/nix/golden.nix { }' \
#     | python3 -m json.tool --sort-keys --indent 2 >cmd/internal/driver/testdata/golden/driver.json
#
# and run `go test ./cmd/internal/driver -update` for the identities.
{ repo ? ../.. }:
let
  pkgs = import ./stand-in.nix {
    system = "x86_64-linux";
    anyImage = ./gen-fixture.nix; # any small file: nothing is built
    goModCache = "/nonexistent";
  };
  fixture = import ./gen-fixture.nix;
  # Ubuntu 24.04 with SELinux, so that selinux_enforcing can be declared.
  gen = fixture // {
    ubuntu = fixture.ubuntu // {
      releases."24.04" = fixture.ubuntu.releases."24.04" // {
        selinux = true;
      };
    };
  };
  d = import (repo + "/lib") { inherit pkgs gen; };
  inherit (pkgs) lib;

  data = pkgs.runCommand "golden-data" { } "mkdir $out";
  test = d.makeTest {
    name = "golden";
    nodes = {
      server = {
        distro = "ubuntu";
        version = "24.04";
        vlans = [
          2
          1
        ];
        memorySize = 2048;
        cpus = 4;
        diskSize = "8G";
        selinuxEnforcing = true;
      };
      client_1 = {
        distro = "debian";
        version = "13";
        sharedDirs = {
          data = {
            source = data;
            target = "/mnt/data";
            readOnly = true;
          };
          logs = {
            source = "/srv/logs";
            target = "/var/log/host";
          };
        };
        diskSize = "+2G";
        extraPathsToRegister = [ data ];
      };
    };
    testScript = "start_all()";
    globalTimeout = 600;
    kvm = false;
  };

  # /nix/store/<32 characters>- → /nix/store/<32 e>-
  placeholder = "${builtins.storeDir}/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-";
  normalize =
    v:
    if builtins.isString v then
      builtins.concatStringsSep "" (map (p: if builtins.isList p then placeholder else p) (
        builtins.split "${builtins.storeDir}/[0-9a-z]{32}-" (builtins.unsafeDiscardStringContext v))
      )
    else if builtins.isList v then
      map normalize v
    else if builtins.isAttrs v then
      builtins.mapAttrs (_: normalize) v
    else
      v;
in
normalize (builtins.fromJSON (builtins.unsafeDiscardStringContext test.sandboxed.driverConfig.text))
