"""A stand-in for `distrotest run --config driver.json`, used by
tests/nix/plumbing.nix: checks that every path driver.json names, and the
tools the runner needs, are reachable where it runs. (The contract's keys are
checked once, against cmd/internal/driver/testdata/golden/driver.json, by
tests/nix/eval.nix.) Writes report.json into --out-dir; exit status 0 when
all is well."""

import argparse
import json
import os
import re
import shutil
import sys

p = argparse.ArgumentParser(prog="distrotest run (fake)")
p.add_argument("run")
p.add_argument("--config", required=True)
p.add_argument("--out-dir")
p.add_argument("--junit")
p.add_argument("--interactive", action="store_true")
p.add_argument("--internet", action="store_true")
p.add_argument("--no-restore", action="store_true")
args = p.parse_args()

problems = []
with open(args.config) as f:
    cfg = json.load(f)
for m in cfg["machines"]:
    if m["extra_paths_to_register"]:
        reg = m.get("nix_registration", "")
        if not reg.startswith(m["nix_store"] + "/") or not os.path.isfile(reg):
            problems.append(f"{m['name']}: nix_registration {reg!r} is not a file in {m['nix_store']}")
        else:
            listed = set(open(reg).read().split("\n"))
            for path in m["extra_paths_to_register"]:
                if path not in listed:
                    problems.append(f"{m['name']}: {path} is not in the registration {reg}")
    if not os.path.isfile(os.path.join(m["image"], "manifest.json")):
        problems.append(f"{m['name']}: no manifest.json in image {m['image']}")
    for tag, d in m["shared_dirs"].items():
        if not os.path.isdir(d["source"]):
            problems.append(f"{m['name']}: share {tag}: {d['source']} is not a directory here")
    for path in m["extra_paths_to_register"]:
        if not os.path.exists(path):
            problems.append(f"{m['name']}: extra path {path} missing")
    if not os.path.isdir(m["nix_store"]):
        problems.append(f"nix_store {m['nix_store']} missing")

with open(cfg["test_script"]) as f:
    script = f.read()
for path in re.findall(r"/nix/store/[a-z0-9]{32}-[^\s'\"]+", script):
    if not os.path.exists(path):
        problems.append(f"store path named by the test script is missing: {path}")

tools = {t: shutil.which(t) for t in ("qemu-system-x86_64", "qemu-img", "python3")}
for tool, found in tools.items():
    if not found:
        problems.append(f"{tool} not on PATH")

lines = []
if args.interactive:
    print("fake interactive driver: type Python; exit() ends", flush=True)
    for line in sys.stdin:
        line = line.rstrip("\n")
        if line == "exit()":
            break
        lines.append(line)
        print(f">>> {line}", flush=True)

report = {"name": cfg["name"], "accel": cfg["accel"], "problems": problems,
          "tools": tools, "interactive_lines": lines, "cwd": os.getcwd(),
          "internet": args.internet}
if args.out_dir:
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
for problem in problems:
    print("fake distrotest:", problem, file=sys.stderr)
print(f"fake distrotest: {cfg['name']}: {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
