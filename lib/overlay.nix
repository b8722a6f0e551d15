# pkgs.testers.nonNixOSDistros, where nix-vm-test's overlay puts its library:
#   pkgs.testers.nonNixOSDistros.debian."13" { testScript = ...; }
final: prev: {
  testers = (prev.testers or { }) // {
    nonNixOSDistros = (prev.testers.nonNixOSDistros or { }) // import ./default.nix { pkgs = final; };
  };
}
