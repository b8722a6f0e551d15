{
  description = "distrotest: NixOS-style VM tests on Debian, Ubuntu, Fedora and Rocky images";

  inputs = {
    nixpkgs.url = "github:nixos/nixpkgs?ref=nixos-unstable";
  };

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      # lib.<system>.<distro>."<version>" { testScript; ... } and lib.<system>.makeTest
      lib = forAllSystems (pkgs: import ./lib { inherit pkgs; });

      packages = forAllSystems (
        pkgs:
        let
          p = import ./lib/package.nix {
            inherit (pkgs)
              lib
              stdenv
              buildGoModule
              installShellFiles
              makeWrapper
              qemu_test
              python3
              ;
          };
        in
        {
          inherit (p) distrotest distrotest-gen;
          default = p.distrotest;
        }
      );

      checks = forAllSystems (pkgs: import ./tests { inherit pkgs; });

      overlays.default = import ./lib/overlay.nix;
    };
}
