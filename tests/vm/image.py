# Image pipeline check (issue 2): the backdoor answers, exit statuses come back,
# the Nix store and one share are mounted at boot.
start_all()
t.assertEqual(machine.succeed("echo ready").strip(), "ready")
status, out = machine.execute("echo out; exit 5")
t.assertEqual((status, out), (5, "out\n"))
machine.succeed("mountpoint -q /nix/.ro-store")
machine.succeed("mountpoint -q /nix/store")
machine.succeed("test -e /nix/store/.distrotest-probe || ls /nix/store >/dev/null")
machine.succeed("mountpoint -q /mnt/data")
t.assertEqual(machine.succeed("cat /mnt/data/hello.txt").strip(), "hello from the host")
machine.succeed("hostname | grep -qx machine")
