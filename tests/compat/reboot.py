# reboot() as nixpkgs does it: Ctrl-Alt-Delete, back at once with connected
# False; with start(allow_reboot=True) (suite.py starts the machine so) the
# guest boots again in the same QEMU and the next command waits for it.
boot_id = machine.succeed("cat /proc/sys/kernel/random/boot_id")
machine.succeed("echo persisted > /root/reboot-state && sync")
machine.reboot()
assert not machine.connected
assert machine.booted
machine.wait_for_unit("multi-user.target")
assert machine.succeed("cat /proc/sys/kernel/random/boot_id") != boot_id
assert machine.succeed("cat /root/reboot-state").strip() == "persisted"
