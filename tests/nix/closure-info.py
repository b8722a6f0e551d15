"""The stand-in closureInfo's builder (tests/nix/stand-in.nix): reads the
structured attributes Nix passes (.attrs.json, with the reference graph of
rootPaths under "closure") and writes $out/store-paths and $out/registration
in the format of `nix-store --dump-db`: per path, the path, its NAR hash, its
NAR size, an empty deriver, the number of references and the references."""

import json
import os
import sys

attrs = json.load(open(sys.argv[1]))
out = attrs["outputs"]["out"]
closure = sorted(attrs["closure"], key=lambda p: p["path"])
os.mkdir(out)
with open(os.path.join(out, "store-paths"), "w") as f:
    f.writelines(p["path"] + "\n" for p in closure)
with open(os.path.join(out, "registration"), "w") as f:
    for p in closure:
        refs = sorted(p["references"])
        f.write("\n".join([p["path"], p["narHash"], str(p["narSize"]), "", str(len(refs))] + refs) + "\n")
