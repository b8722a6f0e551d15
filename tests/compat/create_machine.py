# create_machine: a machine that is not among the test's nodes, made by the
# script, not started until the script starts it (nixpkgs' installer tests
# boot a second machine this way). distrotest boots it from a prepared
# image, here the test's own; it joins the model machine's VLAN with the
# next node number, and the run stops and removes it at the end.
extra = create_machine(name="extra", memory_size=512)
assert not extra.booted
assert extra not in machines
extra.start()
assert extra.succeed("hostname").strip() == "extra"
assert "192.168.1.2/" in extra.succeed("ip -o addr show")
extra.wait_until_succeeds("ping -c 1 -W 2 192.168.1.1", timeout=120)
one_two.succeed("ping -c 1 -W 2 192.168.1.2")
extra.succeed("echo from-extra > /tmp/shared/from-extra")
assert one_two.succeed("cat /tmp/shared/from-extra") == "from-extra\n"
extra.shutdown()
assert not extra.booted
