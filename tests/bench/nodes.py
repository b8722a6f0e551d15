# Bench: wall time from start_all() until every machine's backdoor answers.
import time

t0 = time.monotonic()
start_all()
for m in machines:
    m.succeed("true")
print(f"BENCH {len(machines)} nodes: all backdoors ready in {time.monotonic() - t0:.1f} s")
