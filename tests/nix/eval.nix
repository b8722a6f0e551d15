# Evaluation tests of lib/ and flake.nix against the stand-in package set.
#
#   checks: name → true, or a string saying what is wrong
#   errors: name → { expect = "substring of the error"; value = <throws>; }
#
# scripts/check-nix.sh evaluates `checks` in one go and each `errors.<name>`
# on its own (an error message can only be read from nix's stderr).
{
  repo ? ../..,
  # null: the stand-in's lib; scripts/check-real-nixpkgs.sh passes nixpkgs' real lib
  realLib ? null,
}:
let
  standIn = system: import ./stand-in.nix ({
    inherit system;
    anyImage = ./gen-fixture.nix; # any small file: nothing here is built
    goModCache = "/nonexistent";
  } // (if realLib == null then { } else { lib = realLib; }));
  pkgs = standIn "x86_64-linux";
  pkgsArm = standIn "aarch64-linux";
  gen = import ./gen-fixture.nix;
  d = import (repo + "/lib") { inherit pkgs gen; };
  dArm = import (repo + "/lib") {
    pkgs = pkgsArm;
    inherit gen;
  };

  script = ''vm.succeed("true")'';
  t = d.debian."13" { testScript = script; };
  names = builtins.attrNames;

  expectEq =
    what: want: got:
    if want == got then true else "${what}: want ${builtins.toJSON want}, got ${builtins.toJSON got}";

  share = pkgs.runCommand "share" { } "mkdir $out";
  full = d.debian."13" {
    name = "full";
    testScript = script;
    sharedDirs = {
      drv = {
        source = share;
        target = "/mnt/drv";
      };
      str = {
        source = "/srv/data";
        target = "/mnt/str";
        readOnly = true;
      };
    };
    diskSize = "10G";
    memorySize = 2048;
    cpus = 4;
    extraPathsToRegister = [ share ];
    kvm = false;
  };
  fullMachine = builtins.head full.sandboxed.config.machines;

  anyDisk = ./gen-fixture.nix; # stands for a qcow2: nothing here is built
  vt = d.vmTest {
    image = anyDisk;
    testScript = script;
  };
  vtNamed = d.vmTest {
    image = anyDisk;
    distro = "debian/13";
    name = "mine";
    testScript = script;
    memorySize = 512;
  };
  vtMachine = builtins.head vtNamed.sandboxed.config.machines;

  multi = d.makeTest {
    name = "net";
    nodes = {
      server = {
        distro = "ubuntu";
        version = "24_04"; # nix-vm-test's spelling of "24.04"
        vlans = [
          2
          1
        ];
      };
      client = {
        distro = "debian";
        version = "13";
        vlans = [ 3 ];
      };
    };
    testScript = "start_all()";
  };

  # flake.nix with a fake nixpkgs input made of the stand-in
  flake = import (repo + "/flake.nix");
  fakeNixpkgs = {
    lib = pkgs.lib;
    legacyPackages = {
      x86_64-linux = pkgs;
      aarch64-linux = pkgsArm;
    };
  };
  outputs = flake.outputs {
    self = outputs // {
      outPath = repo;
    };
    nixpkgs = fakeNixpkgs;
  };

  overlaid =
    let
      prev = pkgs // {
        testers = {
          runNixOSTest = "kept";
          nonNixOSDistros.other = "kept";
        };
      };
      final = prev // outputs.overlays.default final prev;
    in
    final.testers;

  inherit (pkgs) lib;
  # lib.hasInfix on strings without their store-path context: real lib's
  # builtins.match refuses context under Nix < 2.18 (check-real-nixpkgs.sh)
  contains = infix: s: lib.hasInfix (builtins.unsafeDiscardStringContext infix) (builtins.unsafeDiscardStringContext s);
  libNix = import (repo + "/lib.nix") {
    nixpkgs = ./fake-nixpkgs;
    system = "aarch64-linux";
  };

  # "accepted arguments: ..." as arguments.nix prints it, from the README's
  # `<fn> { a; b ? x; }` (fn a regular expression)
  readmeAccepted =
    fn:
    let
      parts = builtins.split "`${fn} \\{([^`]*)}`" (builtins.readFile (repo + "/README.md"));
      body = if builtins.length parts < 2 then throw "README.md has no `${fn} { ... }`" else builtins.head (builtins.elemAt parts 1);
      fields = builtins.filter (f: f != "") (
        map (f: builtins.head (builtins.match "[[:space:]]*([^[:space:]]*).*" f)) (
          builtins.filter builtins.isString (builtins.split ";" body)
        )
      );
      optional = builtins.filter (f: builtins.match ".*[?].*" f != null) (
        builtins.filter builtins.isString (builtins.split ";" body)
      );
      optionalNames = map (f: builtins.head (builtins.match "[[:space:]]*([^[:space:]?]*).*" f)) optional;
      required = builtins.filter (n: !(builtins.elem n optionalNames)) fields;
    in
    "accepted arguments: "
    + builtins.concatStringsSep ", " (
      map (n: "`${n}` (required)") required ++ map (n: "`${n}`") (builtins.sort builtins.lessThan optionalNames)
    );

  bad = args: (d.debian."13" args).sandboxed.drvPath;
  badNode = node: (d.makeTest {
    name = "t";
    nodes.server = node;
    testScript = "";
  }).sandboxed.drvPath;
  node = {
    distro = "debian";
    version = "13";
  };
in
{
  checks = {
    single-attrs = expectEq "single-machine attributes" [
      "driver"
      "driverInteractive"
      "image"
      "sandboxed"
    ] (names t);
    maketest-attrs = expectEq "makeTest attributes" [
      "driver"
      "driverInteractive"
      "sandboxed"
    ] (names multi);
    lib-attrs = expectEq "lib.<system> attributes" [
      "debian"
      "fetchContainerDisk"
      "makeTest"
      "ubuntu"
      "vmTest"
    ] (names d);
    images-x86 = expectEq "debian images on x86_64-linux (11 unsupported, 12 arm only)" [ "13" ] (
      names d.debian.images
    );
    images-arm = expectEq "debian images on aarch64-linux" [
      "12"
      "13"
    ] (names dArm.debian.images);
    version-alias = expectEq "ubuntu.\"24_04\" (nix-vm-test spelling) is ubuntu.\"24.04\"" "distrotest-ubuntu-24.04-vm-test" (d.ubuntu."24_04" { testScript = ""; }).sandboxed.name;
    ubuntu-attrs = expectEq "lib.<system>.ubuntu attributes" [
      "24.04"
      "24_04"
      "images"
    ] (names d.ubuntu);
    distro-attrs = expectEq "lib.<system>.debian attributes: every described release (11 unsupported, 12 without an x86 image)" [
      "11"
      "12"
      "13"
      "images"
    ] (names d.debian);
    ubuntu-arm-empty = expectEq "ubuntu on aarch64-linux offers no images" { } dArm.ubuntu.images;
    version-both-spellings = expectEq "ubuntu.\"24.04\" and ubuntu.\"24_04\" make the same test" (d.ubuntu."24.04" { testScript = ""; }).sandboxed.drvPath (d.ubuntu."24_04" { testScript = ""; }).sandboxed.drvPath;
    version-both-spellings-maketest =
      let
        with' = version: (d.makeTest {
          name = "v";
          nodes.a = { distro = "ubuntu"; inherit version; };
          testScript = "";
        }).sandboxed.drvPath;
      in
      expectEq "makeTest nodes: \"24_04\" is \"24.04\"" (with' "24.04") (with' "24_04");
    # One route for distro facts: a prepared image depends on its own
    # release's patchSpec only, and the patcher embeds no descriptions.
    one-route-other-distro =
      let
        changed = gen // {
          ubuntu = gen.ubuntu // {
            releases."24.04" = gen.ubuntu.releases."24.04" // {
              patchSpec = "{\"changed\":true}";
            };
          };
        };
        d2 = import (repo + "/lib") {
          inherit pkgs;
          gen = changed;
        };
      in
      expectEq "debian/13's prepared image after an ubuntu change" t.image.drvPath
        (d2.debian."13" { testScript = script; }).image.drvPath;
    one-route-own-spec =
      let
        changed = gen // {
          debian = gen.debian // {
            releases = gen.debian.releases // {
              "13" = gen.debian.releases."13" // {
                patchSpec = "{\"changed\":true}";
              };
            };
          };
        };
        d2 = import (repo + "/lib") {
          inherit pkgs;
          gen = changed;
        };
      in
      if (d2.debian."13" { testScript = script; }).image.drvPath != t.image.drvPath then
        true
      else
        "debian/13's prepared image did not change with its patchSpec";
    patcher-without-descriptions =
      let
        p = import (repo + "/lib/package.nix") {
          inherit (pkgs) lib stdenv buildGoModule installShellFiles makeWrapper qemu_test python3;
        };
        hcl = builtins.filter (n: builtins.match ".*[.]hcl" n != null) (
          builtins.attrNames (builtins.readDir "${p.distrotest-patcher.src}/distros")
        );
      in
      expectEq "distros/*.hcl in the patcher's source" [ ] hcl;
    selinux-enforcing =
      let
        withSELinux = gen // {
          debian = gen.debian // {
            releases = gen.debian.releases // {
              "13" = gen.debian.releases."13" // {
                selinux = true;
              };
            };
          };
        };
        d2 = import (repo + "/lib") {
          inherit pkgs;
          gen = withSELinux;
        };
        m = builtins.head (d2.debian."13" {
          testScript = script;
          selinuxEnforcing = true;
        }).sandboxed.config.machines;
      in
      expectEq "selinux_enforcing in driver.json (and absent by default)" [ true false ] [
        (m.selinux_enforcing or null)
        (fullMachine ? selinux_enforcing)
      ];
    image-is-prepared = expectEq "image" "distrotest-debian-13-prepared" t.image.name;
    vmtest-attrs = expectEq "vmTest attributes" [
      "driver"
      "driverInteractive"
      "image"
      "sandboxed"
    ] (names vt);
    vmtest-names = expectEq "vmTest names" [ "distrotest-image-vm-test" "distrotest-image-mine-prepared" ] [
      vt.sandboxed.name
      vtNamed.image.name
    ];
    vmtest-machine = expectEq "vmTest machine" {
      name = "vm";
      image = "${vtNamed.image}";
      memory_size = 512;
    } { inherit (vtMachine) name image memory_size; };
    vmtest-no-instrument = expectEq "vmTest instrument = false" true (
      builtins.match ".*--no-instrument .*" (d.vmTest { image = anyDisk; instrument = false; testScript = script; }).image.buildCommand != null
        && builtins.match ".*--no-instrument.*" vt.image.buildCommand == null
    );
    vmtest-distro-flag = expectEq "vmTest passes distro to the patcher" true (
      builtins.match ".*--distro '?debian/13'? .*" vtNamed.image.buildCommand != null
        && builtins.match ".*--distro.*" vt.image.buildCommand == null
    );
    base-image-name = expectEq "base image name" "distrotest-image-debian-13-x86_64-linux.qcow2" (
      builtins.substring 33 (-1) (baseNameOf (toString d.debian.images."13"))
    );
    sandboxed-name = expectEq "sandboxed name" "distrotest-debian-13-vm-test" t.sandboxed.name;
    named = expectEq "sandboxed name with name" "distrotest-debian-13-full" full.sandboxed.name;
    driver-name = expectEq "driver name" "distrotest-debian-13-vm-test-driver" t.driver.name;
    interactive-name =
      expectEq "driverInteractive name" "distrotest-debian-13-vm-test-driver-interactive"
        t.driverInteractive.name;
    main-program = expectEq "driver mainProgram" "test-driver" t.driver.meta.mainProgram;
    features-default = expectEq "requiredSystemFeatures" [
      "kvm"
      "nixos-test"
    ] t.sandboxed.requiredSystemFeatures;
    features-tcg = expectEq "requiredSystemFeatures with kvm = false" [
      "nixos-test"
    ] full.sandboxed.requiredSystemFeatures;
    accel-default = expectEq "accel" "auto" t.sandboxed.config.accel;
    accel-tcg = expectEq "accel with kvm = false" "tcg" full.sandboxed.config.accel;
    # The driver.json contract: the library writes exactly the golden file
    # the Go tests decode (cmd/internal/driver TestGoldenDriverJSON).
    golden-driver-json = expectEq "driver.json of tests/nix/golden.nix (cmd/internal/driver/testdata/golden/driver.json; see golden.nix to rewrite it)" (
      builtins.fromJSON (builtins.readFile (repo + "/cmd/internal/driver/testdata/golden/driver.json"))
    ) (import ./golden.nix { inherit repo; });
    # The machine-identity rules: the examples the Go rules are tested
    # with (cmd/internal/guest TestRules).
    identity-rules =
      let
        rules = builtins.fromJSON (builtins.readFile (repo + "/cmd/internal/guest/testdata/rules.json"));
        a = import (repo + "/lib/arguments.nix") { inherit lib; };
        wrong =
          what: pred: cases:
          map (v: "${what} ${builtins.toJSON v} is accepted") (builtins.filter pred cases.invalid)
          ++ map (v: "${what} ${builtins.toJSON v} is refused") (builtins.filter (v: !pred v) cases.valid);
        problems =
          wrong "node name" a.isNodeName rules.node_names
          ++ wrong "share tag" a.isShareTag rules.share_tags
          ++ wrong "mount target" a.isMountTarget rules.mount_targets
          ++ wrong "vlan" a.isVLAN rules.vlans;
      in
      if problems == [ ] then true else builtins.concatStringsSep "; " problems;
    no-registration-without-extra-paths = expectEq "nix_registration without extraPathsToRegister" false (
      (builtins.head t.sandboxed.config.machines) ? nix_registration
    );
    config-name = expectEq "driver.json name" "debian-13-full" full.sandboxed.config.name;
    # boot once, restore many: tests whose machines have the same shapes
    # share one snapshot derivation, whatever their names, scripts and
    # shares; another shape is another snapshot; restore = false has none
    snapshot-shared = expectEq "two tests of one shape share the snapshot" true (
      t.sandboxed.snapshots.drvPath
      == (d.debian."13" {
        name = "other";
        testScript = "vm.succeed('false')";
        sharedDirs.x = {
          source = "/srv";
          target = "/mnt/x";
        };
      }).sandboxed.snapshots.drvPath
    );
    snapshot-per-shape = expectEq "another memory size is another snapshot" false (
      t.sandboxed.snapshots.drvPath == (d.debian."13" {
        testScript = script;
        memorySize = 2048;
      }).sandboxed.snapshots.drvPath
    );
    snapshot-name = expectEq "snapshot derivation name" "distrotest-debian-13-snapshot" t.sandboxed.snapshots.name;
    snapshot-shapes = expectEq "the snapshot's driver.json has shapes only" [
      {
        name = "shape1";
        image = (builtins.head t.sandboxed.config.machines).image;
        memory_size = 1024;
        cpus = 2;
        vlans = [ 1 ];
        disk_size = null;
        disk_grow = null;
      }
    ] t.sandboxed.snapshots.config.machines;
    snapshot-multi-dedup = expectEq "makeTest: one shape per distinct machine" 2 (
      builtins.length multi.sandboxed.snapshots.config.machines
    );
    no-restore = expectEq "restore = false: no snapshot" false (
      (d.debian."13" {
        testScript = script;
        restore = false;
      }).sandboxed ? snapshots
    );
    config-file = expectEq "driver.json file is the config" full.sandboxed.config (
      builtins.fromJSON (builtins.unsafeDiscardStringContext full.sandboxed.driverConfig.text)
    );
    disk-size-units = expectEq "diskSize to MiB" [ 8192 512 1024 1 300 ] (
      map (
        size:
        (builtins.head
          (d.debian."13" {
            testScript = "";
            diskSize = size;
          }).sandboxed.config.machines
        ).disk_size
      ) [ "8G" "512M" "1048576K" "1048576" 300 ]
    );
    disk-size-relative = expectEq "relative diskSize (nix-vm-test's \"+2G\") → disk_grow" [
      {
        disk_size = null;
        disk_grow = 2048;
      }
      {
        disk_size = null;
        disk_grow = 2;
      }
      {
        disk_size = null;
        disk_grow = null;
      }
    ] (
      map (
        size:
        let
          m = builtins.head
            (d.debian."13" {
              testScript = "";
              diskSize = size;
            }).sandboxed.config.machines;
        in
        {
          inherit (m) disk_size disk_grow;
        }
      ) [ "+2G" "+2M" null ]
    );
    null-defaults =
      expectEq "memorySize/cpus = null mean the defaults (nix-vm-test)"
        {
          memory_size = 1024;
          cpus = 2;
        }
        (
          let
            m = builtins.head
              (d.debian."13" {
                testScript = "";
                memorySize = null;
                cpus = null;
              }).sandboxed.config.machines;
          in
          {
            inherit (m) memory_size cpus;
          }
        );
    path-source =
      let
        m = builtins.head
          (d.debian."13" {
            testScript = "";
            sharedDirs.p = {
              source = ./.;
              target = "/mnt/p";
            };
          }).sandboxed.config.machines;
      in
      if builtins.substring 0 11 m.shared_dirs.p.source == "/nix/store/" then
        true
      else
        "a path source must be copied to the store, got ${m.shared_dirs.p.source}";
    multi-name = expectEq "mixed-distro name" "distrotest-debian-13+ubuntu-24.04-net" multi.sandboxed.name;
    multi-machines = expectEq "machines sorted by name" [
      "client"
      "server"
    ] (map (m: m.name) multi.sandboxed.config.machines);
    multi-vlans = expectEq "vlans: union, sorted" [
      1
      2
      3
    ] multi.sandboxed.config.vlans;
    multi-images = expectEq "each node boots its own distro's prepared image" [
      "${t.image}"
      "${(d.ubuntu."24.04" { testScript = ""; }).image}"
    ] (map (m: m.image) multi.sandboxed.config.machines);
    multi-node-vlans = expectEq "node vlans kept as given" [
      2
      1
    ] (builtins.elemAt multi.sandboxed.config.machines 1).vlans;
    timeout = expectEq "globalTimeout"
      60
      (d.makeTest {
        name = "x";
        nodes.a = node;
        testScript = "";
        globalTimeout = 60;
      }).sandboxed.config.global_timeout;
    ocr-off = expectEq "no tesseract by default" false (
      builtins.any (p: p.name == "stand-in-tesseract") t.sandboxed.nativeBuildInputs
    );
    ocr-on = expectEq "tesseract with enableOCR, English only" [ { enableLanguages = [ "eng" ]; } ] (
      map (p: p.overriddenWith or "not overridden") (
        builtins.filter (p: p.name == "stand-in-tesseract")
          (d.makeTest {
            name = "x";
            nodes.a = node;
            testScript = "";
            enableOCR = true;
          }).sandboxed.nativeBuildInputs
      )
    );
    targets =
      let
        want = map (o: t.${o}.drvPath) targetNames;
        targetNames = [
          "driver"
          "driverInteractive"
          "sandboxed"
        ];
      in
      expectEq "passthru.targets of sandboxed, driver and driverInteractive (nix-vm-test)"
        [ want want want ]
        (map (o: map (n: t.${o}.targets.${n}.drvPath) targetNames) targetNames);
    targets-maketest = expectEq "makeTest outputs have passthru.targets" multi.sandboxed.drvPath multi.driverInteractive.targets.sandboxed.drvPath;
    meta-timeout = expectEq "meta.timeout of sandboxed = globalTimeout (NixOS tests)" [ 3600 60 ] [
      t.sandboxed.meta.timeout
      (d.makeTest {
        name = "x";
        nodes.a = node;
        testScript = "";
        globalTimeout = 60;
      }).sandboxed.meta.timeout
    ];
    driver-internet = expectEq "driver scripts pass --internet, sandboxed does not" [ true true false ] [
      (contains " --internet " t.driver.script)
      (contains " --internet --interactive " t.driverInteractive.script)
      (contains "--internet" t.sandboxed.buildCommand)
    ];
    qemu-headless =
      let
        onPath = script: contains "-stand-in-qemu-test/bin" script && !contains "-stand-in-qemu/bin" script;
      in
      expectEq "every output uses qemu_test (no GUI QEMU)" [ true true true ] [
        (builtins.all (p: p.name != "stand-in-qemu") t.sandboxed.nativeBuildInputs
          && builtins.any (p: p.name == "stand-in-qemu-test") t.sandboxed.nativeBuildInputs)
        (onPath t.driver.script)
        (onPath t.driverInteractive.script)
      ];
    # (fake-nixpkgs always has the stand-in's lib: with the real lib the
    # test's drvPath differs by the source of goModules, which the stand-in's
    # fileset fills with empty directories; the images are the same)
    lib-nix = expectEq "lib.nix { nixpkgs; system; } is lib.<system> (nix-vm-test's non-flake entry)" ([
      (names outputs.lib.aarch64-linux)
      (toString outputs.lib.aarch64-linux.debian.images."13")
    ] ++ lib.optional (realLib == null) (outputs.lib.aarch64-linux.debian."13" { testScript = ""; }).sandboxed.drvPath) ([
      (names libNix)
      (toString libNix.debian.images."13")
    ] ++ lib.optional (realLib == null) (libNix.debian."13" { testScript = ""; }).sandboxed.drvPath);
    flake-every-output =
      let
        perSystem =
          system:
          let
            l = outputs.lib.${system};
            distros = builtins.filter (n: builtins.isAttrs l.${n}) (names l); # not makeTest, vmTest, fetchContainerDisk
            tests = builtins.concatMap (
              distro: map (v: l.${distro}.${v} { testScript = ""; }) (names l.${distro}.images)
            ) distros;
          in
          builtins.concatMap (x: [
            x.sandboxed.drvPath
            x.driver.drvPath
            x.driverInteractive.drvPath
            x.image.drvPath
          ]) tests
          ++ map (n: outputs.packages.${system}.${n}.drvPath) (names outputs.packages.${system});
        drvs = builtins.concatMap perSystem (names outputs.lib);
      in
      if builtins.all builtins.isString drvs && builtins.length drvs > 20 then
        true
      else
        "not every output instantiates: ${toString (builtins.length drvs)} derivations";
    package-wrapped =
      let
        p = outputs.packages.x86_64-linux;
      in
      expectEq "distrotest is wrapped with qemu_test, python3 and distrotest-gen on PATH" [ true true true true ] [
        (builtins.any (x: x.name == "stand-in-make-wrapper") p.distrotest.nativeBuildInputs)
        (contains "${fakeNixpkgs.legacyPackages.x86_64-linux.qemu_test}/bin" p.distrotest.postInstall)
        (contains "${fakeNixpkgs.legacyPackages.x86_64-linux.python3}/bin" p.distrotest.postInstall)
        (contains "${p.distrotest-gen}/bin" p.distrotest.postInstall)
      ];
    passthru = expectEq "sandboxed passthru drivers" "distrotest-debian-13-vm-test-driver" t.sandboxed.driver.name;

    flake-systems = expectEq "flake lib systems" [
      "aarch64-linux"
      "x86_64-linux"
    ] (names outputs.lib);
    flake-packages = expectEq "flake packages" [
      "default"
      "distrotest"
      "distrotest-gen"
    ] (names outputs.packages.x86_64-linux);
    flake-default = expectEq "packages.default" "distrotest-0.1.0" outputs.packages.x86_64-linux.default.name;
    flake-gen-name = expectEq "distrotest-gen name" "distrotest-gen-0.1.0" outputs.packages.aarch64-linux.distrotest-gen.name;
    flake-lib-makeTest = expectEq "flake lib has makeTest" true (outputs.lib.x86_64-linux ? makeTest);
    flake-check-names =
      let
        bad = builtins.filter (n: outputs.checks.x86_64-linux.${n}.name != n) (
          names outputs.checks.x86_64-linux
        );
      in
      if bad == [ ] then true else "checks whose name is not their derivation's: ${toString bad}";
    flake-checks-instantiate =
      let
        drvs = builtins.concatMap (
          system: map (n: outputs.checks.${system}.${n}.drvPath) (names outputs.checks.${system})
        ) (names outputs.checks);
      in
      if builtins.all builtins.isString drvs && drvs != [ ] then
        true
      else
        "some flake checks do not instantiate";
    flake-checks-both-systems = expectEq "checks for both systems" [
      "aarch64-linux"
      "x86_64-linux"
    ] (names outputs.checks);
    overlay = expectEq "overlay: nonNixOSDistros.debian.\"13\" is the library" "distrotest-debian-13-vm-test" (overlaid.nonNixOSDistros.debian."13" { testScript = ""; }).sandboxed.name;
    overlay-keeps = expectEq "overlay keeps other testers" [ "kept" "kept" ] [
      overlaid.runNixOSTest
      overlaid.nonNixOSDistros.other
    ];
    package-sources-differ =
      let
        p = outputs.packages.x86_64-linux;
      in
      if p.distrotest.src != p.distrotest-gen.src then true else "both binaries have the same source";
    vendor-shared = expectEq "one vendor hash for both binaries"
      outputs.packages.x86_64-linux.distrotest.goModules.outputHash
      outputs.packages.x86_64-linux.distrotest-gen.goModules.outputHash;
  };

  errors = {
    # The README's signatures list exactly the arguments the library
    # accepts: an unknown argument's message lists them, built here from
    # the README (required in order, optional ones sorted, as arguments.nix
    # prints them).
    readme-arguments-release = {
      expect = readmeAccepted "lib\\.<system>\\.<distro>\\.\"<version>\"";
      value = (d.debian."13" { testScript = script; bogus = 1; }).sandboxed.drvPath;
    };
    readme-arguments-maketest = {
      expect = readmeAccepted "lib\\.<system>\\.makeTest";
      value = (d.makeTest { name = "t"; nodes = { }; testScript = script; bogus = 1; }).sandboxed.drvPath;
    };
    readme-arguments-vmtest = {
      expect = readmeAccepted "lib\\.<system>\\.vmTest";
      value = (d.vmTest { image = anyDisk; testScript = script; bogus = 1; }).sandboxed.drvPath;
    };
    unknown-argument = {
      expect = "distrotest debian.\"13\": unknown argument `memSize`; accepted arguments: `testScript` (required), `cpus`, `diskSize`, `extraPathsToRegister`, `kvm`, `memorySize`, `name`, `restore`, `selinuxEnforcing`, `sharedDirs`";
      value = bad {
        testScript = "";
        memSize = 1;
      };
    };
    vmtest-image = {
      expect = "distrotest vmTest: `image` must be a path or a derivation of a qcow2 or raw disk image, got the integer 3";
      value = (d.vmTest { image = 3; testScript = script; }).sandboxed.drvPath;
    };
    vmtest-distro = {
      expect = "`distro` must be null (read from the image's /etc/os-release) or \"DISTRO/RELEASE\" such as \"debian/13\", got the string \"debian\"";
      value = (d.vmTest { image = anyDisk; distro = "debian"; testScript = script; }).sandboxed.drvPath;
    };
    vmtest-instrument = {
      expect = "distrotest vmTest: `instrument` must be true or false (false: boot the image as it is, console-only), got the string \"no\"";
      value = (d.vmTest { image = anyDisk; instrument = "no"; testScript = script; }).sandboxed.drvPath;
    };
    vmtest-missing = {
      expect = "distrotest vmTest: missing required argument `image`";
      value = (d.vmTest { testScript = script; }).sandboxed.drvPath;
    };
    missing-testScript = {
      expect = "distrotest debian.\"13\": missing required argument `testScript`";
      value = bad { };
    };
    not-a-set = {
      expect = "expected an attribute set of arguments, got the string \"vm.succeed()\"";
      value = (d.debian."13" "vm.succeed()").sandboxed.drvPath;
    };
    testScript-type = {
      expect = "`testScript` must be a string (the Python test script), got the integer 1";
      value = bad { testScript = 1; };
    };
    memorySize-type = {
      expect = "memorySize must be a positive integer (MiB), got the string \"1G\"";
      value = bad {
        testScript = "";
        memorySize = "1G";
      };
    };
    memorySize-zero = {
      expect = "memorySize must be a positive integer (MiB), got the integer 0";
      value = bad {
        testScript = "";
        memorySize = 0;
      };
    };
    cpus-zero = {
      expect = "cpus must be a positive integer, got the integer 0";
      value = bad {
        testScript = "";
        cpus = 0;
      };
    };
    # nix-vm-test offers it; the real gen/ describes it and says why not
    ubuntu-22_10-underscore-not-offered = {
      expect = "ubuntu \"22.10\" is not offered on x86_64-linux: distros/ubuntu.hcl withdraws it (not_offered): end of life since 2023-07-20: its cloud images were removed from cloud-images.ubuntu.com";
      value = (outputs.lib.x86_64-linux.ubuntu."22_10" { testScript = ""; }).sandboxed.drvPath;
    };
    # nix-vm-test offers it; the real gen/ describes it and says why not
    ubuntu-22_10-dotted-not-offered = {
      expect = "ubuntu \"22.10\" is not offered on x86_64-linux: distros/ubuntu.hcl withdraws it (not_offered): end of life since 2023-07-20: its cloud images were removed from cloud-images.ubuntu.com";
      value = (outputs.lib.x86_64-linux.ubuntu."22.10" { testScript = ""; }).sandboxed.drvPath;
    };
    # nix-vm-test offers it; the real gen/ describes it and says why not
    ubuntu-23_04-underscore-not-offered = {
      expect = "ubuntu \"23.04\" is not offered on x86_64-linux: distros/ubuntu.hcl withdraws it (not_offered): end of life since 2024-01-25: its cloud images were removed from cloud-images.ubuntu.com";
      value = (outputs.lib.x86_64-linux.ubuntu."23_04" { testScript = ""; }).sandboxed.drvPath;
    };
    # nix-vm-test offers it; the real gen/ describes it and says why not
    ubuntu-23_04-dotted-not-offered = {
      expect = "ubuntu \"23.04\" is not offered on x86_64-linux: distros/ubuntu.hcl withdraws it (not_offered): end of life since 2024-01-25: its cloud images were removed from cloud-images.ubuntu.com";
      value = (outputs.lib.x86_64-linux.ubuntu."23.04" { testScript = ""; }).sandboxed.drvPath;
    };
    # nix-vm-test offers it; the real gen/ describes it and says why not
    ubuntu-23_10-underscore-not-offered = {
      expect = "ubuntu \"23.10\" is not offered on x86_64-linux: distros/ubuntu.hcl withdraws it (not_offered): end of life since 2024-07-11: its cloud images were removed from cloud-images.ubuntu.com";
      value = (outputs.lib.x86_64-linux.ubuntu."23_10" { testScript = ""; }).sandboxed.drvPath;
    };
    # nix-vm-test offers it; the real gen/ describes it and says why not
    ubuntu-23_10-dotted-not-offered = {
      expect = "ubuntu \"23.10\" is not offered on x86_64-linux: distros/ubuntu.hcl withdraws it (not_offered): end of life since 2024-07-11: its cloud images were removed from cloud-images.ubuntu.com";
      value = (outputs.lib.x86_64-linux.ubuntu."23.10" { testScript = ""; }).sandboxed.drvPath;
    };
    not-offered-unsupported = {
      expect = "distrotest debian.\"11\": debian \"11\" is not offered on x86_64-linux: it is described in distros/debian.hcl but marked unsupported: distrotest cannot prepare its image yet; debian releases offered on x86_64-linux: `13`";
      value = (d.debian."11" { testScript = ""; }).sandboxed.drvPath;
    };
    not-offered-system = {
      expect = "distrotest debian.\"12\": debian \"12\" is not offered on x86_64-linux: it has no image for x86_64-linux (images for: `aarch64-linux`); debian releases offered on x86_64-linux: `13`";
      value = (d.debian."12" { testScript = ""; }).sandboxed.drvPath;
    };
    not-offered-none = {
      expect = "distrotest ubuntu.\"24.04\": ubuntu \"24.04\" is not offered on aarch64-linux: it has no image for aarch64-linux (images for: `x86_64-linux`); ubuntu releases offered on aarch64-linux: none";
      value = (dArm.ubuntu."24_04" { testScript = ""; }).sandboxed.drvPath;
    };
    diskSize-relative-fraction = {
      expect = "diskSize \"+1536K\" is not a whole number of MiB";
      value = bad {
        testScript = "";
        diskSize = "+1536K";
      };
    };
    diskSize-fraction = {
      expect = "diskSize \"1536K\" is not a whole number of MiB";
      value = bad {
        testScript = "";
        diskSize = "1536K";
      };
    };
    diskSize = {
      expect = "diskSize must be null, a size such as \"8G\", \"512M\" or \"+2G\" (added to the image's size), or MiB as an integer, got the string \"big\"";
      value = bad {
        testScript = "";
        diskSize = "big";
      };
    };
    kvm-type = {
      expect = "`kvm` must be true or false, got the string \"yes\"";
      value = bad {
        testScript = "";
        kvm = "yes";
      };
    };
    name-chars = {
      expect = "`name` must be a string of letters, digits and + - . _ ? = (not starting with a dot), got the string \"my test\"";
      value = bad {
        testScript = "";
        name = "my test";
      };
    };
    extraPaths-type = {
      expect = "extraPathsToRegister must be a list of store paths or derivations, got the string \"/nix/store/x\"";
      value = bad {
        testScript = "";
        extraPathsToRegister = "/nix/store/x";
      };
    };
    sharedDirs-type = {
      expect = "sharedDirs must be an attribute set of { source; target; } by tag, got a list";
      value = bad {
        testScript = "";
        sharedDirs = [ ];
      };
    };
    share-read-only-type = {
      expect = "sharedDirs.data.readOnly must be true or false, got the string \"yes\"";
      value = bad {
        testScript = "";
        sharedDirs.data = {
          source = "/a";
          target = "/b";
          readOnly = "yes";
        };
      };
    };
    share-keys = {
      expect = "sharedDirs.data must be an attribute set with `source`, `target` and optionally `readOnly`, got the attributes `source`, `targt`";
      value = bad {
        testScript = "";
        sharedDirs.data = {
          source = "/a";
          targt = "/b";
        };
      };
    };
    share-target-relative = {
      expect = "sharedDirs.data.target must be an absolute guest path (not /) without spaces, commas, colons or quotes, got the string \"mnt\"";
      value = bad {
        testScript = "";
        sharedDirs.data = {
          source = "/a";
          target = "mnt";
        };
      };
    };
    share-target-comma = {
      expect = "sharedDirs.data.target must be an absolute guest path (not /) without spaces, commas, colons or quotes, got the string \"/mnt/a,b\"";
      value = bad {
        testScript = "";
        sharedDirs.data = {
          source = "/a";
          target = "/mnt/a,b";
        };
      };
    };
    share-target-root = {
      expect = "sharedDirs.data.target must be an absolute guest path (not /)";
      value = bad {
        testScript = "";
        sharedDirs.data = {
          source = "/a";
          target = "/";
        };
      };
    };
    share-source-relative = {
      expect = "sharedDirs.data.source must be absolute";
      value = bad {
        testScript = "";
        sharedDirs.data = {
          source = "data";
          target = "/mnt";
        };
      };
    };
    share-source-type = {
      expect = "sharedDirs.data.source must be a path, a derivation or an absolute path string, got the integer 3";
      value = bad {
        testScript = "";
        sharedDirs.data = {
          source = 3;
          target = "/mnt";
        };
      };
    };
    share-tag = {
      expect = "sharedDirs: the tag `my data` must be a letter then up to 30 letters, digits, '_' or '-'";
      value = bad {
        testScript = "";
        sharedDirs."my data" = {
          source = "/a";
          target = "/mnt";
        };
      };
    };
    share-tag-reserved = {
      expect = "(and not `nix-store`, which is reserved for the Nix store)";
      value = bad {
        testScript = "";
        sharedDirs.nix-store = {
          source = "/a";
          target = "/mnt";
        };
      };
    };
    maketest-unknown = {
      expect = "distrotest makeTest: unknown argument `node`; accepted arguments: `name` (required), `nodes` (required), `testScript` (required), `enableOCR`, `globalTimeout`, `kvm`";
      value =
        (d.makeTest {
          name = "x";
          node = { };
          nodes = { };
          testScript = "";
        }).sandboxed.drvPath;
    };
    maketest-missing = {
      expect = "distrotest makeTest: missing required arguments `nodes`, `testScript`";
      value = (d.makeTest { name = "x"; }).sandboxed.drvPath;
    };
    maketest-no-nodes = {
      expect = "`nodes` must be a non-empty attribute set of machines";
      value =
        (d.makeTest {
          name = "x";
          nodes = { };
          testScript = "";
        }).sandboxed.drvPath;
    };
    maketest-node-name = {
      expect = "node name `1web` must start with a letter and contain only letters, digits, '-' and '_'";
      value =
        (d.makeTest {
          name = "x";
          nodes."1web" = node;
          testScript = "";
        }).sandboxed.drvPath;
    };
    maketest-timeout = {
      expect = "`globalTimeout` must be a positive integer (seconds), got the integer -1";
      value =
        (d.makeTest {
          name = "x";
          nodes.a = node;
          testScript = "";
          globalTimeout = -1;
        }).sandboxed.drvPath;
    };
    node-unknown = {
      expect = "distrotest makeTest \"t\": nodes.server: unknown argument `memory`; accepted arguments: `distro` (required), `version` (required), `cpus`, `diskSize`, `extraPathsToRegister`, `memorySize`, `selinuxEnforcing`, `sharedDirs`, `vlans`";
      value = badNode (node // { memory = 1; });
    };
    node-missing-version = {
      expect = "nodes.server: missing required argument `version`";
      value = badNode { distro = "debian"; };
    };
    node-distro = {
      expect = "nodes.server.distro: unknown distro \"arch\"; distros offered on x86_64-linux: `debian`, `ubuntu`";
      value = badNode (node // { distro = "arch"; });
    };
    node-version = {
      expect = "nodes.server.version: debian has no release \"10\"; debian releases offered on x86_64-linux: `13`";
      value = badNode (node // { version = "10"; });
    };
    node-not-offered = {
      expect = "nodes.server.version: debian \"12\" is not offered on x86_64-linux: it has no image for x86_64-linux";
      value = badNode (node // { version = "12"; });
    };
    selinux-not-available = {
      expect = "selinuxEnforcing: debian 13 has no SELinux (selinux = false in its distros/*.hcl description); only SELinux distros can boot enforcing";
      value = (d.debian."13" {
        testScript = script;
        selinuxEnforcing = true;
      }).sandboxed.drvPath;
    };
    not-offered-withdrawn = {
      expect = "debian \"13\" is not offered on x86_64-linux: distros/debian.hcl withdraws it (not_offered): broken here";
      value =
        (import (repo + "/lib") {
          inherit pkgs;
          gen = gen // {
            debian = gen.debian // {
              releases = gen.debian.releases // {
                "13" = gen.debian.releases."13" // {
                  notOffered = "broken here";
                };
              };
            };
          };
        }).debian."13"
          { testScript = script; };
    };
    node-version-type = {
      expect = "nodes.server.version must be a string such as \"13\", got the integer 13";
      value = badNode (node // { version = 13; });
    };
    node-vlans = {
      expect = "nodes.server.vlans must be a list of integers from 1 to 254, got a list";
      value = badNode (node // { vlans = [ 0 ]; });
    };
    node-vlans-twice = {
      expect = "nodes.server.vlans lists a VLAN twice";
      value = badNode (
        node
        // {
          vlans = [
            1
            1
          ];
        }
      );
    };
    node-memory = {
      expect = "nodes.server.memorySize must be a positive integer (MiB), got the integer -5";
      value = badNode (node // { memorySize = -5; });
    };
    node-share = {
      expect = "nodes.server.sharedDirs.d.target must be an absolute guest path";
      value = badNode (
        node
        // {
          sharedDirs.d = {
            source = "/a";
            target = "x";
          };
        }
      );
    };
  };
}
