# Test construction: validated arguments → driver.json → the three ways to run
# it (in the Nix sandbox, as a script, as an interactive REPL).
#
# driver.json is the one contract between Nix and the Go runner
# (cmd/internal/driver, decoded with DisallowUnknownFields). Key names follow
# nixpkgs' driverConfiguration where the meaning is the same.
{
  lib,
  runCommand,
  writeText,
  writeShellApplication,
  qemu_test,
  qemu,
  python3,
  tesseract,
  distrotest,
  # { <distro>.<version> = { release; base; prepared; }; } offered on `system`
  releases,
  system,
}:
let
  a = import ./arguments.nix { inherit lib; };
  inherit (a) check describe quote;

  nodeDefaults = {
    memorySize = 1024;
    cpus = 2;
    vlans = [ 1 ];
    sharedDirs = { };
    diskSize = null;
    extraPathsToRegister = [ ];
  };

  # `where` prefixes every message, `field` names the argument as the user
  # wrote it ("memorySize" or "nodes.server.memorySize").
  checkSharedDirs =
    where: field: dirs:
    let
      checkDir =
        tag: dir:
        let
          f = "${field}.${tag}";
          hasKeys = builtins.isAttrs dir && builtins.attrNames dir == [ "source" "target" ];
        in
        a.all [
          (check where (a.isShareTag tag && tag != "nix-store")
            "${field}: the tag `${tag}` must be a letter then up to 30 letters, digits, '_' or '-' (and not `nix-store`, which is reserved for the Nix store)"
          )
          (check where hasKeys
            "${f} must be an attribute set with exactly `source` and `target`, got ${
              if builtins.isAttrs dir && !lib.isDerivation dir then
                "the attributes ${quote (builtins.attrNames dir)}"
              else
                describe dir
            }"
          )
          (check where (a.isPathLike dir.source)
            "${f}.source must be a path, a derivation or an absolute path string, got ${describe dir.source}"
          )
          (check where (!builtins.isString dir.source || a.isAbsolute dir.source)
            "${f}.source must be absolute (in the sandbox only store paths exist: use a Nix path such as ./data or a derivation), got ${describe dir.source}"
          )
          (check where (builtins.isString dir.target)
            "${f}.target must be a string (an absolute path in the guest), got ${describe dir.target}"
          )
          (check where (a.isMountTarget dir.target)
            "${f}.target must be an absolute guest path (not /) without spaces, commas, colons or quotes, got ${describe dir.target}"
          )
        ];
    in
    a.all [
      (check where (builtins.isAttrs dirs && !lib.isDerivation dirs)
        "${field} must be an attribute set of { source; target; } by tag, got ${describe dirs}"
      )
      (a.all (lib.mapAttrsToList checkDir dirs))
    ];

  # Validates one node (already completed with defaults) and returns the
  # machine entry of driver.json.
  machine =
    where: prefix: name: node0:
    let
      # nix-vm-test's spelling "24_04" for the release "24.04"
      node =
        let
          v = node0.version;
          dotted = builtins.replaceStrings [ "_" ] [ "." ] v;
          known = releases.${node0.distro} or { };
        in
        if
          builtins.isString node0.distro && builtins.isString v && !(known ? ${v}) && known ? ${dotted}
        then
          node0 // { version = dotted; }
        else
          node0;
      f = field: "${prefix}${field}";
      distros = builtins.attrNames releases;
      versions = builtins.attrNames (releases.${node.distro} or { });
      ok = a.all [
        (check where (builtins.isString node.distro)
          "${f "distro"} must be a string such as \"debian\", got ${describe node.distro}"
        )
        (check where (releases ? ${node.distro})
          "${f "distro"}: unknown distro \"${node.distro}\"; available on ${system}: ${quote distros}"
        )
        (check where (builtins.isString node.version)
          "${f "version"} must be a string such as \"13\", got ${describe node.version}"
        )
        (check where (releases.${node.distro} ? ${node.version})
          "${f "version"}: ${node.distro} has no supported release \"${node.version}\" with an image for ${system}; available: ${quote versions}"
        )
        (check where (a.isPositiveInt node.memorySize)
          "${f "memorySize"} must be a positive integer (MiB), got ${describe node.memorySize}"
        )
        (check where (a.isPositiveInt node.cpus)
          "${f "cpus"} must be a positive integer, got ${describe node.cpus}"
        )
        (check where (
          builtins.isList node.vlans
          && builtins.all (v: builtins.isInt v && v >= 1 && v <= 254) node.vlans
        ) "${f "vlans"} must be a list of integers from 1 to 254, got ${describe node.vlans}")
        (check where (
          builtins.isList node.vlans && lib.unique node.vlans == node.vlans
        ) "${f "vlans"} lists a VLAN twice")
        (checkSharedDirs where (f "sharedDirs") node.sharedDirs)
        (check where (node.diskSize == null || a.isPositiveInt node.diskSize || diskSize != null)
          "${f "diskSize"} must be null, a size such as \"8G\" or \"512M\", or MiB as an integer, got ${describe node.diskSize}"
        )
        (check where (diskSize == null || !diskSize.relative)
          "${f "diskSize"} \"${node.diskSize}\": relative sizes are not supported yet (the runner grows the disk to a total size); give the total, e.g. \"8G\""
        )
        (check where (diskSize == null || diskMiB * 1048576 == diskSize.bytes)
          "${f "diskSize"} \"${node.diskSize}\" is not a whole number of MiB"
        )
        (check where (
          builtins.isList node.extraPathsToRegister && builtins.all a.isPathLike node.extraPathsToRegister
        ) "${f "extraPathsToRegister"} must be a list of store paths or derivations, got ${describe node.extraPathsToRegister}")
      ];
      prepared = releases.${node.distro}.${node.version}.prepared;
      diskSize = a.diskSize node.diskSize; # null unless a size string
      diskMiB = diskSize.bytes / 1048576;
    in
    builtins.seq ok {
      inherit name;
      image = "${prepared}";
      memory_size = node.memorySize;
      inherit (node) cpus vlans;
      disk_size =
        if node.diskSize == null then
          null
        else if builtins.isInt node.diskSize then
          node.diskSize
        else
          diskMiB;
      shared_dirs = builtins.mapAttrs (_: dir: {
        source = "${dir.source}";
        inherit (dir) target;
      }) node.sharedDirs;
      nix_store = builtins.storeDir;
      extra_paths_to_register = map (p: "${p}") node.extraPathsToRegister;
      # for the derivation name; removed before writing driver.json
      tag = "${node.distro}-${node.version}";
    };

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
    ];

  # The common back end. `machines` are driver.json machine entries.
  build =
    {
      name,
      machines,
      testScript,
      globalTimeout,
      kvm,
      enableOCR,
    }:
    let
      tags = lib.unique (map (m: m.tag) machines);
      drvName = "distrotest-${builtins.concatStringsSep "+" tags}-${name}";
      testName = lib.removePrefix "distrotest-" drvName;
      script = writeText "${drvName}-script.py" testScript;
      config = {
        version = 1;
        name = testName;
        test_script = "${script}";
        global_timeout = globalTimeout;
        accel = if kvm then "auto" else "tcg";
        vlans = builtins.sort builtins.lessThan (lib.unique (builtins.concatMap (m: m.vlans) machines));
        machines = map (m: builtins.removeAttrs m [ "tag" ]) machines;
      };
      configFile = writeText "${drvName}-driver.json" (builtins.toJSON config);

      runtimeInputs = [
        distrotest
        python3
      ]
      ++ lib.optional enableOCR tesseract;

      # nix-vm-test and nixpkgs name the script bin/test-driver; keep that so
      # `./result/bin/test-driver` works after switching.
      mkDriver =
        suffix: flags: qemuPackage:
        (writeShellApplication {
          name = "test-driver";
          runtimeInputs = runtimeInputs ++ [ qemuPackage ];
          text = ''
            exec distrotest run --config ${configFile}${flags} "$@"
          '';
          meta.mainProgram = "test-driver";
        }).overrideAttrs
          (_: {
            name = "${drvName}-${suffix}";
          });

      driver = mkDriver "driver" "" qemu_test;
      driverInteractive = mkDriver "driver-interactive" " --interactive" qemu;

      sandboxed =
        runCommand drvName
          {
            nativeBuildInputs = runtimeInputs ++ [ qemu_test ];
            requiredSystemFeatures = lib.optional kvm "kvm" ++ [ "nixos-test" ];
            # for inspection: nix eval .#checks.x86_64-linux.<name>.driverConfig
            driverConfig = configFile;
            passthru = {
              inherit driver driverInteractive config;
            };
            meta.description = "distrotest ${testName} run in the Nix sandbox";
          }
          ''
            export HOME="$TMPDIR/home" XDG_CACHE_HOME="$TMPDIR/cache"
            mkdir -p "$HOME" "$XDG_CACHE_HOME"
            distrotest run --config ${configFile} --out-dir "$out" --junit junit.xml
          '';
    in
    {
      inherit sandboxed driver driverInteractive;
    };

  # lib.<system>.makeTest: several machines, possibly of different distros.
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
        };
      } args0;
      where' = if builtins.isString args.name then "distrotest makeTest \"${args.name}\"" else where;
      nodes = args.nodes;
      nodeNames = builtins.attrNames nodes;
      ok = a.all [
        (checkTopLevel where' args)
        (check where' (a.isPositiveInt args.globalTimeout)
          "`globalTimeout` must be a positive integer (seconds), got ${describe args.globalTimeout}"
        )
        (check where' (builtins.isBool args.enableOCR)
          "`enableOCR` must be true or false, got ${describe args.enableOCR}"
        )
        (check where' (builtins.isAttrs nodes && !lib.isDerivation nodes && nodes != { })
          "`nodes` must be a non-empty attribute set of machines, e.g. { server = { distro = \"debian\"; version = \"13\"; }; }, got ${describe nodes}"
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
        machine where' "nodes.${n}." n (
          a.arguments {
            where = "${where'}: nodes.${n}";
            required = [
              "distro"
              "version"
            ];
            optional = nodeDefaults;
          } node
        )
      ) nodes;
    in
    builtins.seq ok (build {
      inherit (args)
        name
        testScript
        globalTimeout
        kvm
        enableOCR
        ;
      inherit machines;
    });

  # lib.<system>.<distro>."<version>": nix-vm-test's interface, one machine
  # called `vm`.
  single =
    distro: version: args0:
    let
      where = "distrotest ${distro}.\"${version}\"";
      args = a.arguments {
        inherit where;
        required = [ "testScript" ];
        optional = {
          name = "vm-test";
          sharedDirs = { };
          diskSize = null;
          memorySize = 1024;
          cpus = 2;
          extraPathsToRegister = [ ];
          kvm = true;
        };
      } args0;
      # nix-vm-test documents null as "the default" for these two
      orDefault = field: if args.${field} == null then nodeDefaults.${field} else args.${field};
      vm = machine where "" "vm" {
        inherit distro version;
        inherit (args) sharedDirs diskSize extraPathsToRegister;
        memorySize = orDefault "memorySize";
        cpus = orDefault "cpus";
        vlans = [ 1 ];
      };
      ok = checkTopLevel where args;
    in
    builtins.seq ok (
      build {
        inherit (args) name testScript kvm;
        machines = [ vm ];
        globalTimeout = 3600;
        enableOCR = false;
      }
      // {
        image = releases.${distro}.${version}.prepared;
      }
    );

  # Versions are spelled as in distros/*.hcl (ubuntu."24.04"); nix-vm-test
  # spells them with '_' (ubuntu."24_04"), which is accepted as an alias.
  underscored = builtins.replaceStrings [ "." ] [ "_" ];

  # lib.<system>.<distro> = { images; "<version>" = single ...; }
  distro =
    name: versions:
    let
      functions = builtins.mapAttrs (version: _: single name version) versions;
      aliases = builtins.listToAttrs (
        builtins.concatMap (
          v:
          let
            alias = underscored v;
          in
          if alias == v || versions ? ${alias} then
            [ ]
          else
            [
              {
                name = alias;
                value = functions.${v};
              }
            ]
        ) (builtins.attrNames versions)
      );
    in
    {
      images = builtins.mapAttrs (_: r: r.base) versions;
    }
    // aliases
    // functions;
in
{
  inherit makeTest single;
  distros = builtins.mapAttrs distro releases;
}
