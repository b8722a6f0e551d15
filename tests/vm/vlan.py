# Multi-machine networking: names, VLAN addresses, block/unblock, partitions,
# separate VLANs. Nodes (numbered by name): a (vlan 1), b (vlans 1 and 2),
# c (vlan 1), d (vlan 2). Every probe is bound to the test network, so no
# packet leaves the host.
start_all()
for m in machines:
    m.succeed("true")

def vif(m, vlan):
    return m.succeed(f"ip -o addr show to 192.168.{vlan}.0/24 | cut -d' ' -f2").strip()

def ping(m, target, vlan=1):
    return f"ping -c 1 -W 2 -I {vif(m, vlan)} {target}"

with subtest("addresses and host names"):
    t.assertEqual(b.succeed("hostname").strip(), "b")
    b.succeed("ip -o addr | grep -q 'inet 192.168.1.2/24'")
    b.succeed("ip -o addr | grep -q 'inet 192.168.2.2/24'")
    b.succeed("ip -o addr | grep -q 'inet6 2001:db8:2::2/64'")
    a.succeed("grep -qE '^192.168.1.2 b$' /etc/hosts")
    d.succeed("grep -qE '^192.168.2.2 b$' /etc/hosts")

with subtest("the client reaches the server by name: ICMP and TCP"):
    a.wait_until_succeeds(ping(a, "b"), timeout=60)
    a.succeed("ping -6 -c 1 -W 2 2001:db8:1::2")
    b.succeed("systemd-run --unit=pong -- sh -c 'while true; do echo pong | nc -l -N 7000; done'")
    b.wait_for_open_port(7000)
    a.wait_until_succeeds("nc -4 -N -w 5 b 7000 </dev/null | grep -q pong", timeout=120)

with subtest("block and unblock"):
    a.block()
    a.fail(ping(a, "b"))
    a.unblock()
    a.wait_until_succeeds(ping(a, "b"), timeout=60)

with subtest("partition and heal"):
    a.wait_until_succeeds(ping(a, "c"), timeout=60)
    vlan1.partition([a, b], [c])
    a.succeed(ping(a, "b"))
    a.fail(ping(a, "c"))
    c.fail(ping(c, "b"))
    vlan1.heal()
    a.wait_until_succeeds(ping(a, "c"), timeout=60)
    c.wait_until_succeeds(ping(c, "b"), timeout=60)

with subtest("separate vlans"):
    d.wait_until_succeeds(ping(d, "192.168.2.2", vlan=2), timeout=60)
    # a has no NIC on vlan 2 and d none on vlan 1: d's vlan-2 NIC cannot
    # reach a at all, and a cannot reach d through vlan 1.
    d.fail(f"ping -c 1 -W 2 -I {vif(d, 2)} 192.168.1.1")
    a.fail(ping(a, "192.168.2.4"))
