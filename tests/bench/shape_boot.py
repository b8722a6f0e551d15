# Bench: wall time from start() to the first backdoor answer, and the time
# the guest's systemd reports for reaching the backdoor unit. Run by
# scripts/bench-shapes.sh, once per image per round.
import time

t0 = time.monotonic()
machine.start()
machine.succeed("true")
boot = time.monotonic() - t0
active = machine.succeed(
    "systemctl show -P ActiveEnterTimestampMonotonic distrotest-backdoor.service").strip()
print(f"BENCH boot-to-backdoor: {boot:.1f} s (guest monotonic at backdoor start: {int(active) / 1e6:.1f} s)")
machine.shutdown()
