# Release lookup: which distro releases exist (gen/, from distros/*.hcl),
# which of them are offered on `system` (images.nix), how a version may be
# spelled, and what to tell a user who asks for one that is not offered.
{
  lib,
  # { <distro>.<version> = { release; base; prepared; }; } offered on `system`
  releases,
  # the generated distro data: every release, offered or not
  gen,
  system,
}:
let
  a = import ./arguments.nix { inherit lib; };
  inherit (a) quote;

  described = distro: (gen.${distro} or { releases = { }; }).releases;

  # nix-vm-test spells versions with '_' ("24_04"); distros/*.hcl with '.'.
  dotted = builtins.replaceStrings [ "_" ] [ "." ];
  underscored = builtins.replaceStrings [ "." ] [ "_" ];

  # The version as gen/ spells it ("24_04" → "24.04" when that exists).
  canonical =
    distro: version:
    let
      known = described distro;
    in
    if known ? ${version} || !(known ? ${dotted version}) then version else dotted version;

  offeredList = distro: quote (builtins.attrNames (releases.${distro} or { }));

  # Why `distro` `version` (canonical) is not offered on `system`.
  why =
    distro: version:
    let
      release = (described distro).${version};
      systems = builtins.attrNames (release.images or { });
    in
    if !(release.supported or false) then
      "it is described in distros/${distro}.hcl but marked unsupported: distrotest cannot prepare its image yet"
    else if (release.notOffered or null) != null then
      "distros/${distro}.hcl withdraws it (not_offered): ${release.notOffered}"
    else
      "it has no image for ${system} (images for: ${
        if systems == [ ] then "no system" else quote systems
      })";
in
{
  inherit canonical underscored;

  # whether distrotest describes `distro` at all
  known = distro: gen ? ${distro};

  # null when `distro` `version` is offered on `system`, otherwise the
  # message saying why not and what is offered.
  problem =
    distro: version:
    let
      v = canonical distro version;
      offeredHere = builtins.attrNames releases;
      offeredText = if offeredHere == [ ] then "none" else quote offeredHere;
      releasesText =
        let
          l = offeredList distro;
        in
        if l == "" then "none" else l;
    in
    if !(gen ? ${distro}) then
      "unknown distro \"${distro}\"; distros offered on ${system}: ${offeredText}"
    else if releases ? ${distro} && releases.${distro} ? ${v} then
      null
    else if (described distro) ? ${v} then
      "${distro} \"${version}\" is not offered on ${system}: ${why distro v}; ${distro} releases offered on ${system}: ${releasesText}"
    else
      "${distro} has no release \"${version}\"; ${distro} releases offered on ${system}: ${releasesText}";
}
