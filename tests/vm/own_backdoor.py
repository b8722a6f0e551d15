# Images with their own NixOS-style backdoor (issues 10 and 12): a Debian 13
# image with test-instrumentation.nix's backdoor.service (cmd/internal/
# testimage nixos-backdoor), driven as it is on hvc0. Outputs come back
# byte-exact; a reply the virtconsole shortened fails its checks instead of
# returning partial output.
start_all()
machine.wait_for_unit("multi-user.target")

with subtest("the image's own backdoor, not distrotest's"):
    machine.require_unit_state("backdoor.service", "active")
    status, _ = machine.execute("systemctl cat distrotest-backdoor.service")
    t.assertNotEqual(status, 0)
    t.assertEqual(machine.succeed("readlink /proc/$$/fd/0"), "/dev/hvc0\n")
    status, out = machine.execute("printf 'a\\nb'; exit 7")
    t.assertEqual((status, out), (7, "a\nb"))
    machine.fail("false")
    # a background process holding stdout must not hang the driver
    machine.succeed("sleep 1000 &")

def lines(n):
    # seq's output, whose every byte depends on its place: a dropped or
    # repeated run of bytes shows
    return "".join(f"{i}\n" for i in range(1, n + 1))

with subtest("outputs byte-exact"):
    t.assertEqual(machine.succeed("true"), "")
    t.assertEqual(machine.succeed("printf x"), "x")
    t.assertEqual(machine.succeed("printf 'a\\0b\\0'"), "a\0b\0")
    for size in (65535, 65536, 65537):
        t.assertEqual(machine.succeed(f"head -c {size} /dev/zero | tr '\\0' y"), "y" * size)
    for n in (10000, 150000):  # 48 KiB and 1 MiB of seq
        t.assertEqual(machine.succeed(f"seq 1 {n}"), lines(n))

with subtest("large outputs: exact or a clear error, never partial"):
    n = 1000000  # 6.6 MiB: the virtconsole drops bytes when the host is slow
    want = lines(n)
    exact = failed = 0
    first = ""
    for _ in range(4):
        try:
            out = machine.succeed(f"seq 1 {n}")
        except Exception as e:
            t.assertIn("backdoor reply failed its checks", str(e))
            failed += 1
            first = first or str(e)
        else:
            t.assertEqual(len(out), len(want))
            t.assertTrue(out == want, "the output differs")
            exact += 1
        t.assertEqual(machine.succeed("echo in-step"), "in-step\n")
    print(f"6.6 MiB outputs on hvc0: {exact} exact, {failed} failed their checks, 0 partial")
    if first:
        print(f"the first failure: {first[:300]}")
