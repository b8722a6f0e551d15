# Boot once, restore many, in Nix: one derivation per set of machine shapes
# (prepared image, memory, CPUs, disk, VLANs, SELinux) holding the snapshot
# of each shape booted to its shell (cmd/internal/machine). Its driver.json
# has only what shapes the machines — no test name, script, node names or
# shares — so every test whose machines have the same shapes gets the same
# derivation, built once; the tests restore their machines from it
# (`distrotest run --snapshot-dir`, read-only in the store) and boot cold
# when it has no snapshot of a machine's shape (the reason is in the log).
{
  lib,
  runCommand,
  writeText,
  qemu_test,
  python3,
  distrotest,
}:
{
  # driver.json machine entries (lib/nodes.nix), with `tag`
  machines,
  kvm,
}:
let
  shapeKeys = [
    "image"
    "memory_size"
    "cpus"
    "vlans"
    "disk_size"
    "disk_grow"
    "selinux_enforcing"
    "share_transport"
  ];
  shapes = lib.unique (map (m: lib.filterAttrs (k: _: builtins.elem k shapeKeys) m) machines);
  tags = lib.unique (map (m: m.tag) machines);
  drvName = "distrotest-${builtins.concatStringsSep "+" tags}-snapshot";
  config = {
    version = 1;
    name = "snapshot";
    # not run (--snapshot-only); driver.json needs one
    test_script = "${writeText "${drvName}-script.py" "# distrotest run --snapshot-only runs no script\n"}";
    accel = if kvm then "auto" else "tcg";
    vlans = builtins.sort builtins.lessThan (lib.unique (builtins.concatMap (m: m.vlans) shapes));
    machines = builtins.genList (
      i: builtins.elemAt shapes i // { name = "shape${toString (i + 1)}"; }
    ) (builtins.length shapes);
  };
  configFile = writeText "${drvName}-driver.json" (builtins.toJSON config);
in
runCommand drvName
  {
    nativeBuildInputs = [
      distrotest
      python3
      qemu_test
    ];
    requiredSystemFeatures = lib.optional kvm "kvm" ++ [ "nixos-test" ];
    passthru = { inherit config; };
    meta.description = "distrotest snapshots of ${builtins.concatStringsSep ", " tags} booted to their shell";
  }
  ''
    export HOME="$TMPDIR/home" XDG_CACHE_HOME="$TMPDIR/cache"
    mkdir -p "$HOME" "$XDG_CACHE_HOME" "$out"
    distrotest run --config ${configFile} --out-dir "$TMPDIR/out" --snapshot-only --snapshot-dir "$out"
    rm -f "$out"/*.lock
  ''
