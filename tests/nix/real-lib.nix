# nixpkgs' real lib against the stand-in (tests/nix/stand-in-lib.nix, which
# defines exactly the lib functions lib/, flake.nix and the tests use):
# every one exists in the real lib, and both give the same results on the
# kinds of arguments distrotest passes. scripts/check-real-nixpkgs.sh
# evaluates `checks` (name → true, or what differs) with a nixpkgs lib/.
{ realLib }:
let
  standIn = import ./stand-in-lib.nix;
  names = builtins.attrNames;
  drv = {
    type = "derivation";
    name = "x";
  };
  # function name → argument lists, applied to both libs
  cases = {
    concatLists = [ [ [ [ 1 ] [ 2 3 ] [ ] ] ] ];
    escapeShellArg = map (s: [ s ]) [ "plain" "a b" "it's" "x=y" "" "/nix/store/abc-d/bin" "$HOME" "a,b:c@d%e" ];
    filterAttrs = [ [ (n: v: v > 1) { a = 1; b = 2; c = 3; } ] ];
    genAttrs = [ [ [ "x86_64-linux" "aarch64-linux" ] (s: "for-${s}") ] ];
    hasInfix = [ [ "--internet" "run --internet --x" ] [ "b" "" ] [ "" "abc" ] ];
    hasPrefix = [ [ "distrotest-" "distrotest-x" ] [ "a" "" ] ];
    hasSuffix = [ [ "_test.go" "x_test.go" ] [ "_test.go" "test.go" ] [ "" "a" ] ];
    isDerivation = [ [ drv ] [ { } ] [ "s" ] ];
    makeBinPath = [ [ [ "/a" "/b" ] ] [ [ ] ] ];
    mapAttrsToList = [ [ (n: v: "${n}=${toString v}") { b = 2; a = 1; } ] ];
    optional = [ [ true 1 ] [ false 1 ] ];
    optionalAttrs = [ [ true { a = 1; } ] [ false { a = 1; } ] ];
    optionalString = [ [ true "s" ] [ false "s" ] ];
    optionals = [ [ true [ 1 2 ] ] [ false [ 1 ] ] ];
    removePrefix = [ [ "distrotest-" "distrotest-debian-13" ] [ "x" "abc" ] [ "" "abc" ] ];
    unique = [ [ [ 3 1 3 2 1 ] ] [ [ ] ] [ [ "a" "a" ] ] ];
  };
  apply = f: args: builtins.foldl' (g: a: g a) f args;
  compare =
    name:
    let
      results = map (args: {
        inherit args;
        real = apply realLib.${name} args;
        stand = apply standIn.${name} args;
      }) (cases.${name} or [ ]);
      bad = builtins.filter (r: r.real != r.stand) results;
    in
    if !(realLib ? ${name}) then
      "lib.${name} is used but nixpkgs' lib has no such function"
    else if name == "fileset" then
      let
        missing = builtins.filter (n: !(realLib.fileset ? ${n})) (names standIn.fileset);
      in
      if missing == [ ] then true else "lib.fileset lacks ${builtins.toJSON missing}"
    else if !(cases ? ${name}) then
      "no sample arguments for lib.${name} in tests/nix/real-lib.nix"
    else if bad != [ ] then
      "lib.${name}: real and stand-in differ on ${builtins.toJSON (map (r: { inherit (r) real stand; }) bad)}"
    else
      true;
in
{
  checks = builtins.listToAttrs (map (n: {
    name = "lib-${n}";
    value = compare n;
  }) (names standIn));
}
