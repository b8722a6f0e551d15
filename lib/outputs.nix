# A test's outputs: driver.json from validated machine entries, and the
# three ways to run it — in the Nix sandbox (sandboxed), as a script on the
# host (driver), as an interactive Python prompt (driverInteractive). Each
# has passthru.targets = { sandboxed; driver; driverInteractive; } as
# nix-vm-test's have.
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
  python3,
  tesseract,
  distrotest,
  # lib/snapshot.nix, applied
  snapshot,
}:
let
  # OCR as nixpkgs' test driver has it: English only (all of tessdata is
  # hundreds of megabytes).
  ocr = tesseract.override { enableLanguages = [ "eng" ]; };
in
{
  name,
  # driver.json machine entries (lib/nodes.nix), with `tag`
  machines,
  testScript,
  globalTimeout,
  kvm,
  enableOCR,
  # restore the machines from the snapshot of their shapes (lib/snapshot.nix)
  # in the sandbox; false boots them cold
  restore,
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
  snapshots = snapshot { inherit machines kvm; };
  restoreFlag = if restore then "--snapshot-dir ${snapshots}" else "--no-restore";

  # qemu_test, as nixpkgs' tests use: headless (the runner never opens a
  # window), the host's architecture only.
  runtimeInputs = [
    distrotest
    python3
    qemu_test
  ]
  ++ lib.optional enableOCR ocr;

  targets = {
    inherit sandboxed driver driverInteractive;
  };

  # nix-vm-test and nixpkgs name the script bin/test-driver; keep that so
  # `./result/bin/test-driver` works after switching. Outside the sandbox
  # the guests reach the internet through QEMU's user-mode NAT, as in
  # nix-vm-test (`--internet=false` on the command line: VLANs only);
  # $QEMU_OPTS is appended to QEMU's command line by the runner.
  mkDriver =
    suffix: flags:
    (writeShellApplication {
      name = "test-driver";
      inherit runtimeInputs;
      text = ''
        exec distrotest run --config ${configFile} --internet${flags} "$@"
      '';
      meta.mainProgram = "test-driver";
    }).overrideAttrs
      (old: {
        name = "${drvName}-${suffix}";
        passthru = (old.passthru or { }) // {
          inherit targets config;
        };
      });

  driver = mkDriver "driver" "";
  driverInteractive = mkDriver "driver-interactive" " --interactive";

  sandboxed =
    runCommand drvName
      {
        nativeBuildInputs = runtimeInputs;
        requiredSystemFeatures = lib.optional kvm "kvm" ++ [ "nixos-test" ];
        # for inspection: nix eval .#checks.x86_64-linux.<name>.driverConfig
        driverConfig = configFile;
        passthru = {
          inherit
            targets
            driver
            driverInteractive
            config
            ;
        }
        // lib.optionalAttrs restore { inherit snapshots; };
        meta = {
          description = "distrotest ${testName} run in the Nix sandbox";
          # as NixOS tests: Hydra and other builders stop the build then
          timeout = globalTimeout;
        };
      }
      ''
        export HOME="$TMPDIR/home" XDG_CACHE_HOME="$TMPDIR/cache"
        mkdir -p "$HOME" "$XDG_CACHE_HOME"
        distrotest run --config ${configFile} --out-dir "$out" --junit junit.xml ${restoreFlag}
      '';
in
targets
