# Bench: wall time from start() to the first backdoor answer, then backdoor
# round trips per second. Run by scripts/bench.sh.
import time

t0 = time.monotonic()
machine.start()
machine.succeed("true")
boot = time.monotonic() - t0

n = 100
t1 = time.monotonic()
for _ in range(n):
    machine.succeed("true")
rt = (time.monotonic() - t1) / n

t2 = time.monotonic()
for _ in range(n):
    machine.succeed("/bin/true")
exec_rt = (time.monotonic() - t2) / n

t3 = time.monotonic()
machine.succeed("head -c 1048576 /dev/zero")
mib = time.monotonic() - t3

print(f"BENCH boot-to-backdoor: {boot:.1f} s")
print(f"BENCH builtin round trip: {rt*1000:.1f} ms ({1/rt:.1f} commands/s)")
print(f"BENCH exec round trip: {exec_rt*1000:.1f} ms ({1/exec_rt:.1f} commands/s)")
print(f"BENCH 1 MiB of output: {mib:.2f} s")
machine.shutdown()
