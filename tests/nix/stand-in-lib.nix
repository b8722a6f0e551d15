# Stand-in for the part of nixpkgs' `lib` that lib/, tests/default.nix and
# flake.nix use, written from builtins because nixpkgs cannot be fetched on
# the machines where scripts/check-nix.sh runs. Each function follows the
# documented nixpkgs semantics for the arguments we pass; anything not listed
# here is deliberately missing, so a new use of `lib` fails loudly in the
# stand-in evaluation and gets added (and reviewed) here.
let
  hasPrefix = prefix: s: builtins.substring 0 (builtins.stringLength prefix) s == prefix;
  hasSuffix =
    suffix: s:
    let
      ls = builtins.stringLength s;
      lx = builtins.stringLength suffix;
    in
    lx <= ls && builtins.substring (ls - lx) lx s == suffix;

  # --- lib.fileset --------------------------------------------------------
  # A file set is { include = path: type: bool; descend = path: bool;
  # covers = path: bool; } over absolute path strings. `toSource` hands these
  # to builtins.path as its filter. (The real implementation is a tree; the
  # results agree except that empty directories may remain here.)
  under = root: p: p == root || hasPrefix (root + "/") p;

  fromPath =
    path:
    let
      s = toString path;
    in
    if !builtins.pathExists path then
      throw "lib.fileset (stand-in): ${s} does not exist; wrap it in lib.fileset.maybeMissing if that is expected"
    else
      {
        _type = "fileset";
        include = p: _: under s p;
        descend = p: under s p || hasPrefix (p + "/") s;
        covers = p: under s p;
      };

  coerce = x: if builtins.isAttrs x && x._type or null == "fileset" then x else fromPath x;

  empty = {
    _type = "fileset";
    include = _: _: false;
    descend = _: false;
    covers = _: false;
  };

  fileset = {
    maybeMissing = path: if builtins.pathExists path then fromPath path else empty;

    unions =
      list:
      let
        sets = map coerce list;
      in
      {
        _type = "fileset";
        include = p: t: builtins.any (f: f.include p t) sets;
        descend = p: builtins.any (f: f.descend p) sets;
        covers = p: builtins.any (f: f.covers p) sets;
      };

    difference =
      a: b:
      let
        fa = coerce a;
        fb = coerce b;
      in
      {
        _type = "fileset";
        include = p: t: fa.include p t && !(fb.include p t);
        descend = p: fa.descend p && !(fb.covers p);
        covers = _: false; # conservative: only used to skip directories
      };

    # predicate gets { name; type; hasExt; } like nixpkgs' fileFilter
    fileFilter =
      pred: path:
      let
        root = fromPath path;
      in
      {
        _type = "fileset";
        include =
          p: t:
          root.include p t
          && t != "directory"
          && pred {
            name = baseNameOf p;
            type = t;
            hasExt = ext: hasSuffix ".${ext}" (baseNameOf p);
          };
        descend = root.descend;
        covers = _: false;
      };

    toSource =
      { root, fileset }:
      let
        f = coerce fileset;
      in
      builtins.path {
        path = root;
        name = "source";
        filter = p: t: if t == "directory" then f.descend p else f.include p t;
      };
  };
in
{
  inherit hasPrefix hasSuffix fileset;

  genAttrs =
    names: f:
    builtins.listToAttrs (
      map (n: {
        name = n;
        value = f n;
      }) names
    );

  mapAttrsToList = f: attrs: map (n: f n attrs.${n}) (builtins.attrNames attrs);

  filterAttrs =
    pred: attrs:
    builtins.listToAttrs (
      builtins.concatMap (
        n:
        if pred n attrs.${n} then
          [
            {
              name = n;
              value = attrs.${n};
            }
          ]
        else
          [ ]
      ) (builtins.attrNames attrs)
    );

  isDerivation = v: builtins.isAttrs v && v.type or null == "derivation";

  unique = builtins.foldl' (acc: e: if builtins.elem e acc then acc else acc ++ [ e ]) [ ];

  removePrefix =
    prefix: s:
    if hasPrefix prefix s then
      builtins.substring (builtins.stringLength prefix) (builtins.stringLength s) s
    else
      s;

  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalString = cond: s: if cond then s else "";
  optionalAttrs = cond: attrs: if cond then attrs else { };
  concatLists = builtins.concatLists;

  # real lib: makeSearchPath "bin" (a list of packages → "p1/bin:p2/bin")
  makeBinPath = pkgs: builtins.concatStringsSep ":" (map (p: "${p}/bin") pkgs);

  hasInfix =
    infix: s:
    let
      n = builtins.stringLength infix;
      l = builtins.stringLength s;
      at = i: i + n <= l && (builtins.substring i n s == infix || at (i + 1));
    in
    at 0;

  escapeShellArg =
    arg:
    let
      s = toString arg;
    in
    if builtins.match "[[:alnum:],._+:@%/-]+" s == null then
      "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] s}'"
    else
      s;
}
