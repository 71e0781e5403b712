"""Bench section "hostile": the hostile-load suite (tests/hostile/suite.py)
at the issue's sizes, against `rpyc-rs serve` (threaded, pool), an
installed ThreadedServer and stock rpyc's, with the 4 x 60 s soak. Prints
a markdown table of outcomes and writes it to bench-results/hostile.md
(the README's "Under hostile load" figures come from it), and the raw
figures to bench-results/hostile.json.

BENCH_QUICK=1 runs the bounded sizes ci/test uses instead. Needs a
release build of the CLI (made here with cargo).
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "hostile"))

import suite  # noqa: E402


def main() -> int:
    os.chdir(ROOT)
    subprocess.run(["cargo", "build", "--release", "--bin", "rpyc-rs"], check=True)
    scale = "quick" if os.environ.get("BENCH_QUICK") == "1" else "full"
    os.makedirs("bench-results", exist_ok=True)
    out = os.path.join("bench-results", "hostile.json")
    suite.main(["--bin", os.path.join("target", "release", "rpyc-rs"), "--scale", scale, "--json", out])
    with open(out) as f:
        results = json.load(f)
    lines = [f"Hostile load ({scale} sizes): outcome per server; BAD marks a server that did not hold up.", "",
             "| case | " + " | ".join(suite.TARGETS) + " |", "|---|" + "---|" * len(suite.TARGETS)]
    for case, per in results.items():
        cells = []
        for t in suite.TARGETS:
            r = per.get(t)
            cells.append("" if r is None else (r["outcome"] if r["ok"] else f"BAD: {r['outcome']}"))
        lines.append(f"| {case} | " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    with open(os.path.join("bench-results", "hostile.md"), "w") as f:
        f.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
