# End to end through the real lib/: the stand-in package set (host QEMU and
# Python, the Go binaries built in the sandbox by the stand-in buildGoModule)
# and a locally built debian/13 image in place of the one gen/ names, booted
# under TCG (kvm = false) inside the Nix sandbox. Built by scripts/check-nix.sh.
{
  # `go env GOMODCACHE`
  goModCache,
  # a local debian/13 qcow2 (`distrotest-gen image build debian/13`)
  image,
  # host tools PATH for the stand-in (where `go` is)
  hostPath ? null,
  # changes the test derivations (not the images) so that every run of
  # scripts/check-nix.sh boots the VMs again instead of reusing the result
  nonce ? "",
}:
let
  gen = import ../../gen;
  url = gen.debian.releases."13".images.x86_64-linux.url;
  pkgs = import ./stand-in.nix (
    {
      inherit goModCache;
      localImages.${url} = image;
    }
    // (if hostPath == null then { } else { inherit hostPath; })
  );
  distrotest = import ../../lib { inherit pkgs; };

  data = pkgs.runCommand "distrotest-e2e-data" { } ''
    mkdir -p "$out"
    echo "hello from the host" > "$out/hello.txt"
  '';
  marker = pkgs.writeText "distrotest-e2e-marker" "visible in the guest store";
in
distrotest.debian."13" {
  name = "e2e";
  kvm = false;
  sharedDirs.data = {
    source = data;
    target = "/mnt/data";
  };
  extraPathsToRegister = [ marker ];
  diskSize = "4G";
  memorySize = 768;
  testScript = ''
    # run ${nonce}
    start_all()
    t.assertEqual(vm.succeed("cat /mnt/data/hello.txt").strip(), "hello from the host")
    t.assertEqual(vm.succeed("cat ${marker}"), "visible in the guest store")
    vm.succeed("mountpoint -q /nix/store")
    vm.succeed("hostname | grep -qx vm")
    t.assertEqual(vm.succeed("lsblk -bdno SIZE /dev/vda").strip(), str(4 * 1024**3))
    t.assertIn("MemTotal", vm.succeed("grep MemTotal /proc/meminfo"))
    status, out = vm.execute("echo out; exit 5")
    t.assertEqual((status, out), (5, "out\n"))
  '';
}
// {
  inherit pkgs distrotest;

  # two machines on a VLAN
  multi = distrotest.makeTest {
    name = "e2e-vlan";
    kvm = false;
    nodes = {
      client = {
        distro = "debian";
        version = "13";
      };
      server = {
        distro = "debian";
        version = "13";
        cpus = 1;
      };
    };
    testScript = ''
      # run ${nonce}
      start_all()
      server.succeed("true")  # its shell is up
      client.wait_until_succeeds("ping -c 1 -W 2 server", timeout=120)
      server.wait_until_succeeds("ping -c 1 -W 2 192.168.1.1", timeout=60)
      client.block()
      client.fail("ping -c 1 -W 2 server")
      client.unblock()
      client.wait_until_succeeds("ping -c 1 -W 2 server", timeout=60)
    '';
  };
}
