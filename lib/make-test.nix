# The functions users call: makeTest (several machines, possibly of
# different distros), single (nix-vm-test's per-release function, one
# machine called `vm`) and vmTest (one machine from any image). Both validate their arguments and hand machine
# entries (lib/nodes.nix) to lib/outputs.nix.
{
  lib,
  # lib/nodes.nix, applied
  nodes,
  # lib/outputs.nix, applied
  outputs,
  # lib/releases.nix, applied
  lookup,
  # lib/prepare-image.nix, for vmTest's images
  prepare,
  # { <distro>.<version> = { release; base; prepared; }; } offered on `system`
  releases,
}:
let
  a = import ./arguments.nix { inherit lib; };
  inherit (a) check describe;

  checkTopLevel =
    where: args:
    a.all [
      (check where (builtins.isString args.name && a.isStoreName args.name)
        "`name` must be a string of letters, digits and + - . _ ? = (not starting with a dot), got ${describe args.name}"
      )
      (check where (builtins.isString args.testScript)
        "`testScript` must be a string (the Python test script), got ${describe args.testScript}"
      )
      (check where (builtins.isBool args.kvm) "`kvm` must be true or false, got ${describe args.kvm}")
      (check where (builtins.isBool args.restore)
        "`restore` must be true or false (false: boot every machine cold instead of restoring it from the snapshot of its shape), got ${describe args.restore}"
      )
    ];

  # lib.<system>.makeTest
  makeTest =
    args0:
    let
      where = "distrotest makeTest";
      args = a.arguments {
        inherit where;
        required = [
          "name"
          "nodes"
          "testScript"
        ];
        optional = {
          globalTimeout = 3600;
          enableOCR = false;
          kvm = true;
          restore = true;
        };
      } args0;
      where' = if builtins.isString args.name then "distrotest makeTest \"${args.name}\"" else where;
      nodeSet = args.nodes;
      nodeNames = builtins.attrNames nodeSet;
      ok = a.all [
        (checkTopLevel where' args)
        (check where' (a.isPositiveInt args.globalTimeout)
          "`globalTimeout` must be a positive integer (seconds), got ${describe args.globalTimeout}"
        )
        (check where' (builtins.isBool args.enableOCR)
          "`enableOCR` must be true or false, got ${describe args.enableOCR}"
        )
        (check where' (builtins.isAttrs nodeSet && !lib.isDerivation nodeSet && nodeSet != { })
          "`nodes` must be a non-empty attribute set of machines, e.g. { server = { distro = \"debian\"; version = \"13\"; }; }, got ${describe nodeSet}"
        )
        (check where' (builtins.length nodeNames <= 254) "at most 254 nodes fit on a VLAN")
        (a.all (
          map (
            n:
            check where' (a.isNodeName n)
              "node name `${n}` must start with a letter and contain only letters, digits, '-' and '_' (at most 63; it becomes the host name)"
          ) nodeNames
        ))
      ];
      machines = lib.mapAttrsToList (
        n: node:
        nodes.machine where' "nodes.${n}." n (
          a.arguments {
            where = "${where'}: nodes.${n}";
            required = [
              "distro"
              "version"
            ];
            optional = nodes.defaults;
          } node
        )
      ) nodeSet;
    in
    builtins.seq ok (outputs {
      inherit (args)
        name
        testScript
        globalTimeout
        kvm
        enableOCR
        restore
        ;
      inherit machines;
    });

  # lib.<system>.<distro>."<version>": nix-vm-test's interface. `version`
  # is canonical (as in gen/); a release that is not offered throws its
  # reason as soon as the function is called.
  single =
    distro: version: args0:
    let
      where = "distrotest ${distro}.\"${version}\"";
      problem = lookup.problem distro version;
      args = a.arguments {
        inherit where;
        required = [ "testScript" ];
        optional = {
          name = "vm-test";
          inherit (nodes.defaults)
            sharedDirs
            diskSize
            memorySize
            cpus
            extraPathsToRegister
            selinuxEnforcing
            ;
          kvm = true;
          restore = true;
        };
      } args0;
      # nix-vm-test documents null as "the default" for these two
      orDefault = field: if args.${field} == null then nodes.defaults.${field} else args.${field};
      vm = nodes.machine where "" "vm" {
        inherit distro version;
        inherit (args) sharedDirs diskSize extraPathsToRegister selinuxEnforcing;
        memorySize = orDefault "memorySize";
        cpus = orDefault "cpus";
        vlans = [ 1 ];
      };
      ok = a.all [
        (check where (problem == null) problem)
        (checkTopLevel where args)
      ];
    in
    builtins.seq ok (
      outputs {
        inherit (args) name testScript kvm restore;
        machines = [ vm ];
        globalTimeout = 3600;
        enableOCR = false;
      }
      // {
        image = releases.${distro}.${version}.prepared;
      }
    );

  # lib.<system>.vmTest: any qcow2 or raw image, one machine called `vm`.
  # The release is `distro` ("debian/13") or, when null, the one the image's
  # /etc/os-release names; distrotest-gen prepares the image in the sandbox.
  # With instrument = false the image boots as it is (console-only tests).
  vmTest =
    args0:
    let
      where = "distrotest vmTest";
      args = a.arguments {
        inherit where;
        required = [
          "image"
          "testScript"
        ];
        optional = {
          name = "vm-test";
          distro = null;
          instrument = true;
          inherit (nodes.defaults)
            sharedDirs
            diskSize
            memorySize
            cpus
            extraPathsToRegister
            ;
          kvm = true;
          restore = true;
        };
      } args0;
      ok = a.all [
        (check where (a.isPathLike args.image && (!builtins.isString args.image || a.isAbsolute args.image))
          "`image` must be a path or a derivation of a qcow2 or raw disk image, got ${describe args.image}"
        )
        (check where (
          args.distro == null
          || builtins.isString args.distro && builtins.match "[a-z][a-z0-9-]*/[0-9A-Za-z][0-9A-Za-z._-]*" args.distro != null
        ) "`distro` must be null (read from the image's /etc/os-release) or \"DISTRO/RELEASE\" such as \"debian/13\", got ${describe args.distro}")
        (check where (builtins.isBool args.instrument)
          "`instrument` must be true or false (false: boot the image as it is, console-only), got ${describe args.instrument}"
        )
        (checkTopLevel where args)
      ];
      image = prepare {
        inherit (args) image distro instrument;
        name = "distrotest-image-${args.name}-prepared";
      };
      orDefault = field: if args.${field} == null then nodes.defaults.${field} else args.${field};
      vm = nodes.machine where "" "vm" {
        prepared = image;
        tag = "image";
        inherit (args) sharedDirs diskSize extraPathsToRegister;
        memorySize = orDefault "memorySize";
        cpus = orDefault "cpus";
        vlans = [ 1 ];
      };
    in
    builtins.seq ok (
      outputs {
        inherit (args) name testScript kvm restore;
        machines = [ vm ];
        globalTimeout = 3600;
        enableOCR = false;
      }
      // {
        inherit image;
      }
    );
in
{
  inherit makeTest single vmTest;
}
