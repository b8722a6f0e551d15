# Machines: one node's arguments, validated, as a machine entry of
# driver.json (cmd/internal/driver MachineConfig; JSON keys snake_case).
{
  lib,
  # lib/releases.nix, applied
  lookup,
  # { <distro>.<version> = { release; base; prepared; }; } offered on `system`
  releases,
  # nixpkgs' closureInfo: the registration of extraPathsToRegister's closure
  closureInfo,
}:
let
  a = import ./arguments.nix { inherit lib; };
  inherit (a) check describe quote;

  # The defaults of every node argument but `distro` and `version`.
  defaults = {
    memorySize = 1024;
    cpus = 2;
    vlans = [ 1 ];
    sharedDirs = { };
    diskSize = null;
    extraPathsToRegister = [ ];
    # SELinux distros boot permissive (enforcing=0 from the prepared
    # image's kernel parameters); true boots enforcing (nix-vm-test's
    # Fedora argument, offered for every release with selinux = true)
    selinuxEnforcing = false;
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
          keys = builtins.attrNames dir;
          hasKeys =
            builtins.isAttrs dir
            && builtins.elem "source" keys
            && builtins.elem "target" keys
            && builtins.all (k: builtins.elem k [ "source" "target" "readOnly" ]) keys;
        in
        a.all [
          (check where (a.isShareTag tag)
            "${field}: the tag `${tag}` must be a letter then up to 30 letters, digits, '_' or '-' (and not `nix-store`, which is reserved for the Nix store)"
          )
          (check where hasKeys
            "${f} must be an attribute set with `source`, `target` and optionally `readOnly`, got ${
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
          (check where (builtins.isBool (dir.readOnly or false))
            "${f}.readOnly must be true or false, got ${describe (dir.readOnly or null)}"
          )
        ];
    in
    a.all [
      (check where (builtins.isAttrs dirs && !lib.isDerivation dirs)
        "${field} must be an attribute set of { source; target; } by tag, got ${describe dirs}"
      )
      (a.all (lib.mapAttrsToList checkDir dirs))
    ];

  # diskSize: null, MiB as an integer, or a qemu-img size string, absolute
  # ("8G": the total) or relative ("+2G": added to the image's size, as
  # nix-vm-test's qemu-img resize takes it). Returns the driver.json keys.
  diskKeys =
    where: field: size:
    let
      parsed = a.diskSize size; # null unless a size string
      mib = parsed.bytes / 1048576;
      ok = a.all [
        (check where (size == null || a.isPositiveInt size || parsed != null)
          "${field} must be null, a size such as \"8G\", \"512M\" or \"+2G\" (added to the image's size), or MiB as an integer, got ${describe size}"
        )
        (check where (parsed == null || mib * 1048576 == parsed.bytes)
          "${field} \"${size}\" is not a whole number of MiB"
        )
      ];
    in
    builtins.seq ok (
      if size == null then
        {
          disk_size = null;
          disk_grow = null;
        }
      else if builtins.isInt size then
        {
          disk_size = size;
          disk_grow = null;
        }
      else if parsed.relative then
        {
          disk_size = null;
          disk_grow = mib;
        }
      else
        {
          disk_size = mib;
          disk_grow = null;
        }
    );

  # Validates one node (already completed with defaults) and returns its
  # machine entry of driver.json. `prefix` is "" for the single-machine
  # function, "nodes.<name>." for makeTest.
  machine =
    where: prefix: name: node0:
    let
      f = field: "${prefix}${field}";
      # vmTest passes its own prepared image (and a tag for the name)
      own = node0 ? prepared;
      typesOk = [
        (own || check where (builtins.isString node0.distro)
          "${f "distro"} must be a string such as \"debian\", got ${describe node0.distro}"
        )
        (own || check where (builtins.isString node0.version)
          "${f "version"} must be a string such as \"13\", got ${describe node0.version}"
        )
      ];
      node =
        if own then
          node0
        else
          node0
          // {
            version = lookup.canonical node0.distro node0.version;
          };
      problem = if own then null else lookup.problem node0.distro node0.version;
      ok = a.all (typesOk ++ [
        (check where (problem == null) "${f (if lookup.known node.distro then "version" else "distro")}: ${problem}")
        (check where (a.isPositiveInt node.memorySize)
          "${f "memorySize"} must be a positive integer (MiB), got ${describe node.memorySize}"
        )
        (check where (a.isPositiveInt node.cpus)
          "${f "cpus"} must be a positive integer, got ${describe node.cpus}"
        )
        (check where (
          builtins.isList node.vlans
          && builtins.all a.isVLAN node.vlans
        ) "${f "vlans"} must be a list of integers from 1 to 254, got ${describe node.vlans}")
        (check where (
          builtins.isList node.vlans && lib.unique node.vlans == node.vlans
        ) "${f "vlans"} lists a VLAN twice")
        (checkSharedDirs where (f "sharedDirs") node.sharedDirs)
        (check where (
          builtins.isList node.extraPathsToRegister && builtins.all a.isPathLike node.extraPathsToRegister
        ) "${f "extraPathsToRegister"} must be a list of store paths or derivations, got ${describe node.extraPathsToRegister}")
        (check where (builtins.isBool (node.selinuxEnforcing or false))
          "${f "selinuxEnforcing"} must be true or false, got ${describe node.selinuxEnforcing}"
        )
        (check where (
          (node.selinuxEnforcing or false) != true || (releases.${node.distro}.${node.version}.release.selinux or false)
        ) "${f "selinuxEnforcing"}: ${node.distro} ${node.version} has no SELinux (selinux = false in its distros/*.hcl description); only SELinux distros can boot enforcing")
      ]);
      prepared = if own then node.prepared else releases.${node.distro}.${node.version}.prepared;
    in
    builtins.seq ok (
      {
        inherit name;
        image = "${prepared}";
        memory_size = node.memorySize;
        inherit (node) cpus vlans;
        shared_dirs = builtins.mapAttrs (
          _: dir:
          {
            source = "${dir.source}";
            inherit (dir) target;
          }
          // lib.optionalAttrs (dir.readOnly or false) { read_only = true; }
        ) node.sharedDirs;
        nix_store = builtins.storeDir;
        extra_paths_to_register = map (p: "${p}") node.extraPathsToRegister;
      }
      # The closure's registration (nix-store --dump-db format) is a store
      # path: it reaches the guest with the store share, which loads it
      # with nix-store --load-db at boot.
      // lib.optionalAttrs (node.extraPathsToRegister != [ ]) {
        nix_registration = "${closureInfo { rootPaths = node.extraPathsToRegister; }}/registration";
      }
      // {
        # for the derivation name; removed before writing driver.json
        tag = if own then node.tag else "${node.distro}-${node.version}";
      }
      // diskKeys where (f "diskSize") node.diskSize
      # only when asked: the key stays out of every other driver.json
      // (if (node.selinuxEnforcing or false) == true then { selinux_enforcing = true; } else { })
    );
in
{
  inherit defaults machine;
}
