# Bench (bench/restore.sh): start_all() until every machine answered its
# first command, then the test's work: every machine pings every other by
# name and writes a file to its xchg share.
import time

t0 = time.monotonic()
start_all()
for m in machines:
    m.succeed("true")
print(f"BENCH first command: {time.monotonic() - t0:.2f} s", flush=True)
for m in machines:
    for other in machines:
        if other is not m:
            m.succeed(f"ping -c1 -W10 {other.name}")
    m.succeed(f"hostname > /tmp/xchg/name && test $(cat /tmp/xchg/name) = {m.name}")
