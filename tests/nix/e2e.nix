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
  # the virtual size of `image` in bytes (qemu-img info), to check diskSize
  imageBytes,
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
  sharedDirs.ro = {
    source = data;
    target = "/tmp/ro";
    readOnly = true;
  };
  extraPathsToRegister = [ marker ];
  # relative, as nix-vm-test's tests write it: the image's size + 2 GiB
  diskSize = "+2G";
  memorySize = 768;
  testScript = ''
    # run ${nonce}
    import os
    start_all()
    t.assertEqual(vm.succeed("cat /mnt/data/hello.txt").strip(), "hello from the host")
    # virtiofs, the default, with the host's virtiofsd run unprivileged by
    # the Nix build user inside the sandbox
    for target in ["/nix/.ro-store", "/mnt/data", "/tmp/ro"]:
        t.assertEqual(vm.succeed(f"findmnt -no FSTYPE {target}").strip(), "virtiofs")
    t.assertEqual(vm.succeed("cat /tmp/ro/hello.txt").strip(), "hello from the host")
    vm.fail("touch /tmp/ro/new")
    t.assertEqual(vm.succeed("cat ${marker}"), "visible in the guest store")
    vm.succeed("mountpoint -q /nix/store")
    vm.succeed("hostname | grep -qx vm")
    t.assertEqual(vm.succeed("lsblk -bdno SIZE /dev/vda").strip(), str(${toString imageBytes} + 2 * 1024**3))
    t.assertIn("MemTotal", vm.succeed("grep MemTotal /proc/meminfo"))
    status, out = vm.execute("echo out; exit 5")
    t.assertEqual((status, out), (5, "out\n"))
    # Set by scripts/check-nix.sh for the `driver` run on the host, where
    # QEMU_OPTS (an SMBIOS serial number) must reach QEMU and the guest
    # must have a default route; the sandboxed run has neither.
    serial = os.environ.get("DISTROTEST_E2E_SERIAL")
    routes = vm.succeed("ip route show default")
    if serial:
        t.assertEqual(vm.succeed("cat /sys/class/dmi/id/product_serial").strip(), serial)
        t.assertIn("via 10.0.2.2", routes)
    else:
        t.assertEqual(routes.strip(), "", "a sandboxed guest has no default route")
  '' + builtins.readFile ./root-grown.py;
}
// {
  inherit pkgs distrotest;

  # vmTest: any local image with no distro named; the release comes from
  # its /etc/os-release (read by distrotest-gen in the sandbox)
  vmtest = distrotest.vmTest {
    name = "e2e-any-image";
    image = distrotest.debian.images."13";
    kvm = false;
    restore = false; # one cold boot: the restore checks are below
    memorySize = 768;
    testScript = ''
      # run ${nonce}
      start_all()
      t.assertEqual(vm.succeed(". /etc/os-release && echo $ID $VERSION_ID").strip(), "debian 13")
    '';
  };

  # boot once, restore many: two checks of one shape (the defaults) with
  # different scripts restore from one snapshot derivation, built once; a
  # restored guest still has the snapshot's kernel command line (no
  # distrotest.hostname), yet its identity
  restoreA = distrotest.debian."13" {
    name = "e2e-restore-a";
    kvm = false;
    testScript = ''
      # run ${nonce}
      vm.succeed("! grep -q distrotest.hostname /proc/cmdline")
      vm.succeed("hostname | grep -qx vm")
      vm.succeed("echo a > /tmp/xchg/a && mountpoint -q /nix/store")
    '';
  };
  restoreB = distrotest.debian."13" {
    name = "e2e-restore-b";
    kvm = false;
    testScript = ''
      # run ${nonce}
      vm.succeed("! grep -q distrotest.hostname /proc/cmdline")
      t.assertEqual(vm.succeed("findmnt -no FSTYPE /tmp/shared").strip(), "virtiofs")
    '';
  };

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
