# Argument checking for the functions users call.
#
# The public functions take a plain attribute set instead of a `{ a, b ? x }:`
# pattern so that an unknown or missing argument produces a message that
# names every accepted argument, and each value is checked with a message that
# says what was expected and what was given.
{ lib }:
let
  # A short description of a value for error messages.
  describe =
    v:
    if builtins.isString v then
      "the string \"${v}\""
    else if builtins.isInt v then
      "the integer ${toString v}"
    else if builtins.isFloat v then
      "the float ${toString v}"
    else if builtins.isBool v then
      (if v then "true" else "false")
    else if v == null then
      "null"
    else if builtins.isPath v then
      "the path ${toString v}"
    else if lib.isDerivation v then
      "the derivation ${v.name or "<unnamed>"}"
    else if builtins.isAttrs v then
      "an attribute set"
    else if builtins.isList v then
      "a list"
    else if builtins.isFunction v then
      "a function"
    else
      "a ${builtins.typeOf v}";

  quote = names: builtins.concatStringsSep ", " (map (n: "`${n}`") names);
  plural = xs: if builtins.length xs == 1 then "" else "s";
  matches = re: s: builtins.isString s && builtins.match re s != null;
in
rec {
  inherit describe;

  # Checks the names in `args` against the accepted ones and fills in
  # defaults. `required` is a list of names, `optional` an attribute set of
  # defaults. Returns the completed attribute set or throws.
  arguments =
    {
      where,
      required ? [ ],
      optional ? { },
    }:
    args:
    let
      accepted = required ++ builtins.attrNames optional;
      acceptedText = builtins.concatStringsSep ", " (
        map (n: "`${n}` (required)") required ++ map (n: "`${n}`") (builtins.attrNames optional)
      );
      unknown = builtins.filter (n: !(builtins.elem n accepted)) (builtins.attrNames args);
      missing = builtins.filter (n: !(builtins.hasAttr n args)) required;
    in
    if !builtins.isAttrs args || lib.isDerivation args then
      throw "${where}: expected an attribute set of arguments, got ${describe args}; accepted arguments: ${acceptedText}"
    else if unknown != [ ] then
      throw "${where}: unknown argument${plural unknown} ${quote unknown}; accepted arguments: ${acceptedText}"
    else if missing != [ ] then
      throw "${where}: missing required argument${plural missing} ${quote missing}; accepted arguments: ${acceptedText}"
    else
      optional // args;

  # `true` when `ok`, otherwise throws "<where>: <message>".
  check =
    where: ok: message:
    if ok then true else throw "${where}: ${message}";

  # Forces a list of checks; true when all pass (a failing one throws).
  all = checks: builtins.all (c: c) checks;

  isPositiveInt = v: builtins.isInt v && v > 0;

  # Something Nix can turn into a path string: a string, a path, a derivation
  # or another set with `outPath`.
  isPathLike = v: builtins.isString v || builtins.isPath v || (builtins.isAttrs v && v ? outPath);

  # Store names: nixpkgs' allowed characters, not starting with a dot.
  isStoreName = matches "[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]*";

  # The machine-identity rules are cmd/internal/guest's (identity.go);
  # these say the same, tested against the same examples
  # (cmd/internal/guest/testdata/rules.json, tests/nix/eval.nix).

  # Node names become host names and Python identifiers ('-' → '_').
  isNodeName = matches "[A-Za-z][A-Za-z0-9_-]{0,62}";

  # 9p mount tags: short, no separators used on the kernel command line;
  # `nix-store` is the Nix store's.
  isShareTag = s: matches "[A-Za-z][A-Za-z0-9_-]{0,30}" s && s != "nix-store";

  # Guest mount points travel on the kernel command line as TAG:TARGET.
  isMountTarget = s: matches "/[^[:space:],:\"'\\\\]*" s && builtins.match "/+" s == null;

  # VLANs are the third octet of 192.168.<vlan>.<node>.
  isVLAN = v: builtins.isInt v && v >= 1 && v <= 254;

  # qemu-img sizes: digits and a unit (none = bytes, K, M, G, T: powers of
  # 1024), absolute ("8G") or relative ("+2G").
  diskSize =
    s:
    let
      m = if builtins.isString s then builtins.match "([+]?)0*([1-9][0-9]*)([kKMGT]?)" s else null;
      n = builtins.fromJSON (builtins.elemAt m 1);
      unit = builtins.elemAt m 2;
      bytes =
        n
        * {
          "" = 1;
          k = 1024;
          K = 1024;
          M = 1024 * 1024;
          G = 1024 * 1024 * 1024;
          T = 1024 * 1024 * 1024 * 1024;
        }.${unit};
    in
    if m == null then
      null
    else
      {
        relative = builtins.elemAt m 0 == "+";
        inherit bytes;
      };

  # A string that is an absolute path (or will be one once coerced).
  isAbsolute = s: builtins.substring 0 1 s == "/";

  inherit quote matches;
}
