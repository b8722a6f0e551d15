# Flake checks: checks.<system>.<name>, each named like its derivation.
#
# - distrotest-<distro>-<version>-multi-user: every offered image boots and
#   reaches multi-user.target (as nix-vm-test checks every image)
# - distrotest-debian-13-*: shares, a grown disk and root file system, two
#   machines on a VLAN
# - distrotest-gen-drift: gen/ is what `distrotest-gen gen` makes of distros/
# - distrotest-go-test: the Go unit tests
{ pkgs }:
let
  inherit (pkgs) lib;
  fs = lib.fileset;
  distrotest = import ../lib { inherit pkgs; };
  packages = import ../lib/package.nix {
    inherit (pkgs)
      lib
      stdenv
      buildGoModule
      installShellFiles
      makeWrapper
      qemu_test
      python3
      ;
  };

  named = drv: {
    name = drv.name;
    value = drv;
  };

  # the distro sets; the functions beside them (makeTest, fetchContainerDisk) are not distros
  distros = lib.filterAttrs (_: builtins.isAttrs) distrotest;

  multiUser = lib.concatLists (
    lib.mapAttrsToList (
      distro: set:
      map (
        version:
        named
          (set.${version} {
            name = "multi-user";
            testScript = ''
              vm.wait_for_unit("multi-user.target")
            '';
          }).sandboxed
      ) (builtins.attrNames set.images)
    ) distros
  );

  hasDebian13 = distros ? debian && distros.debian.images ? "13";

  dir =
    name: content:
    pkgs.runCommand name { } ''
      mkdir -p $out
      echo ${lib.escapeShellArg content} > $out/file
    '';

  debian13 = lib.optionals hasDebian13 [
    (named
      (distrotest.debian."13" {
        name = "shared-dirs";
        sharedDirs = {
          one = {
            source = dir "distrotest-share-one" "hello one";
            target = "/tmp/one";
          };
          two = {
            source = dir "distrotest-share-two" "hello two";
            target = "/mnt/two";
          };
        };
        testScript = ''
          vm.wait_for_unit("multi-user.target")
          vm.succeed('test "$(cat /tmp/one/file)" = "hello one"')
          vm.succeed('test "$(cat /mnt/two/file)" = "hello two"')
        '';
      }).sandboxed
    )
    (named
      (distrotest.debian."13" {
        name = "disk-size";
        # nix-vm-test's spelling: 2 GiB more than the image's disk
        diskSize = "+2G";
        testScript = ''
          vm.wait_for_unit("multi-user.target")
        '' + builtins.readFile ./nix/root-grown.py;
      }).sandboxed
    )
    (named
      (distrotest.makeTest {
        name = "vlan";
        nodes = {
          client = {
            distro = "debian";
            version = "13";
          };
          server = {
            distro = "debian";
            version = "13";
            memorySize = 768;
          };
        };
        testScript = ''
          start_all()
          server.wait_for_unit("multi-user.target")
          client.wait_for_unit("multi-user.target")
          client.wait_until_succeeds("ping -c 1 -W 2 server", timeout=120)
          server.wait_until_succeeds("ping -c 1 -W 2 192.168.1.1", timeout=60)
          client.block()
          client.fail("ping -c 1 -W 2 server")
          client.unblock()
          client.wait_until_succeeds("ping -c 1 -W 2 server", timeout=60)
        '';
      }).sandboxed
    )
  ];

  genDrift =
    pkgs.runCommand "distrotest-gen-drift"
      {
        nativeBuildInputs = [ packages.distrotest-gen ];
        src = fs.toSource {
          root = ../.;
          fileset = fs.unions [
            ../distros
            ../gen
          ];
        };
      }
      ''
        distrotest-gen gen --check --dir "$src/distros" --out "$src/gen"
        touch $out
      '';
in
builtins.listToAttrs (
  multiUser
  ++ debian13
  ++ [
    (named genDrift)
    (named packages.go-test)
  ]
)
