# lib.<system>.<distro>: for every distro distrotest describes (gen/),
#   { images = { "<version>" = <base image>; ... };   offered releases only
#     "<version>" = args: { sandboxed; driver; driverInteractive; image; }; }
# Versions are spelled as in distros/*.hcl (ubuntu."24.04") and, as
# nix-vm-test spells them, with '_' (ubuntu."24_04"). Releases that are
# described but not offered on this system are functions too: calling one
# throws the reason (unsupported, or no image for this system) instead of
# Nix's bare "attribute missing".
{
  # lib/make-test.nix's single
  single,
  # lib/releases.nix, applied
  lookup,
  # { <distro>.<version> = { release; base; prepared; }; } offered on `system`
  releases,
  gen,
}:
let
  forDistro =
    name: data:
    let
      versions = builtins.attrNames data.releases;
      functions = builtins.listToAttrs (
        map (v: {
          name = v;
          value = single name v;
        }) versions
      );
      aliases = builtins.listToAttrs (
        builtins.concatMap (
          v:
          let
            alias = lookup.underscored v;
          in
          if alias == v || functions ? ${alias} then
            [ ]
          else
            [
              {
                name = alias;
                value = functions.${v};
              }
            ]
        ) versions
      );
    in
    {
      images = builtins.mapAttrs (_: r: r.base) (releases.${name} or { });
    }
    // aliases
    // functions;
in
builtins.mapAttrs forDistro gen
