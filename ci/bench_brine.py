"""ci/bench section "brine": rpyc_rs.brine vs rpyc.core.brine, dump and load.

Two payloads (the same as benches/brine.rs):

- ``triples``: ``tuple((i, f"item-{i}", i * 0.5) for i in range(1000))``;
- ``mixed``: one small tuple holding every brine type once.

Method: for each payload and operation the two implementations are timed
alternately, ``--repeats`` times, each run looping long enough to last about
``--run-ms`` milliseconds. Reported are the median time per call of each and
the median of the per-run speedups (pairing the runs keeps a machine that
slows down mid-bench from skewing the ratio). CPython's own C serializer,
``marshal``, is timed in the same runs on the same value as a reference: it
shows what a C implementation inside the interpreter achieves, i.e. roughly
the ceiling for any extension (for ``load``, most of the time is CPython
allocating, filling and freeing the result objects). The garbage collector stays on,
as in real use (``timeit`` would turn it off). Both results are checked
byte-for-byte before anything is timed.

Prints a markdown table and writes it to ``bench-results/brine.md``. Exit
status is 0 whatever the numbers, unless ``--check`` is given: then 1 if a
speedup misses its target.

Usage: .venv/bin/python ci/bench_brine.py [--repeats N] [--run-ms MS] [--check]
(``ci/bench`` runs it; with BENCH_QUICK=1 in the environment the defaults
drop to 5 repeats of 40 ms, for a smoke run.)
"""

from __future__ import annotations

import argparse
import datetime
import marshal
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Tuple

import rpyc
import rpyc_rs
from rpyc.core import brine as ref
from rpyc_rs import brine as rs

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench-results" / "brine.md"

#: (payload, operation) -> the speedup the project aims for.
TARGETS = {
    ("triples", "dump"): 25.0,
    ("triples", "load"): 25.0,
    ("mixed", "dump"): 10.0,
    ("mixed", "load"): 10.0,
}


def payloads() -> List[Tuple[str, str, Any]]:
    triples = tuple((i, f"item-{i}", i * 0.5) for i in range(1000))
    mixed = (
        None, NotImplemented, Ellipsis, True, False, 0, -48, 159, 160, -49, 2**100,
        1.5, float("nan"), 1 + 2j, b"", b"abc", b"x" * 300, "", "héllo", "🌍" * 3,
        (), (1, 2), frozenset([1, 2, 3]), slice(1, None, 2),
    )
    return [
        ("triples", "1000 × (int, str, float)", triples),
        ("mixed", "every brine type once", mixed),
    ]


def per_call(f: Callable[[Any], Any], arg: Any, number: int) -> float:
    """Seconds per call of ``f(arg)``, over ``number`` calls."""
    t0 = time.perf_counter()
    for _ in range(number):
        f(arg)
    return (time.perf_counter() - t0) / number


def calibrate(f: Callable[[Any], Any], arg: Any, run_s: float) -> int:
    """How many calls of ``f(arg)`` take about ``run_s`` seconds."""
    number = 1
    while True:
        t = per_call(f, arg, number) * number
        if t >= run_s / 4 or number >= 1 << 24:
            return max(1, int(number * run_s / max(t, 1e-9)))
        number *= 4


def measure(f_ref: Callable, f_rs: Callable, arg: Any, f_c: Callable, arg_c: Any, repeats: int, run_s: float):
    """Median times of rpyc, rpyc_rs and marshal, the median speedup of
    rpyc_rs over rpyc and the median speedup of marshal over rpyc."""
    n_ref = calibrate(f_ref, arg, run_s)
    n_rs = calibrate(f_rs, arg, run_s)
    n_c = calibrate(f_c, arg_c, run_s / 3) if f_c else 0
    t_ref, t_rs, t_c, ratios, ratios_c = [], [], [], [], []
    for _ in range(repeats):
        a = per_call(f_ref, arg, n_ref)
        b = per_call(f_rs, arg, n_rs)
        c = per_call(f_c, arg_c, n_c) if f_c else math.nan
        t_ref.append(a)
        t_rs.append(b)
        t_c.append(c)
        ratios.append(a / b)
        ratios_c.append(a / c)
    med = statistics.median
    return med(t_ref), med(t_rs), med(t_c), med(ratios), med(ratios_c)


def fmt_time(s: float) -> str:
    us = s * 1e6
    if us >= 100:
        return f"{us:,.0f} µs"
    if us >= 10:
        return f"{us:.1f} µs"
    return f"{us:.2f} µs"


def fmt_ref(t: float, speedup: float) -> str:
    return "n/a" if math.isnan(t) else f"{fmt_time(t)} ({speedup:.1f}x)"


def check_same(name: str, value: Any) -> bytes:
    """Both sides agree on the bytes, and load each other's output."""
    data = ref.dump(value)
    if rs.dump(value) != data:
        raise SystemExit(f"bench_brine: rpyc_rs.brine.dump differs from rpyc's on {name}")
    if ref.dump(rs.load(data)) != data:
        raise SystemExit(f"bench_brine: rpyc_rs.brine.load does not round-trip {name}")
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ap.add_argument("--repeats", type=int, default=5 if quick else 15,
                    help="paired runs per measurement (default 15; 5 with BENCH_QUICK=1)")
    ap.add_argument("--run-ms", type=float, default=40.0 if quick else 150.0,
                    help="length of one run in ms (default 150; 40 with BENCH_QUICK=1)")
    ap.add_argument("--check", action="store_true", help="exit 1 if a speedup misses its target")
    args = ap.parse_args()
    run_s = args.run_ms / 1000.0

    rows = []
    missed = []
    for name, desc, value in payloads():
        data = check_same(name, value)
        try:
            mdata = marshal.dumps(value)
            m_dump, m_load = marshal.dumps, marshal.loads
        except ValueError:  # slices, NotImplemented: no reference then
            mdata, m_dump, m_load = b"", None, None
        for op, f_ref, f_rs, arg, f_c, arg_c in [
            ("dump", ref.dump, rs.dump, value, m_dump, value),
            ("load", ref.load, rs.load, data, m_load, mdata),
        ]:
            t_ref, t_rs, t_c, speedup, speedup_c = measure(f_ref, f_rs, arg, f_c, arg_c, args.repeats, run_s)
            target = TARGETS[(name, op)]
            met = speedup >= target
            if not met:
                missed.append(f"{name} {op}: {speedup:.1f}x < {target:g}x")
            rows.append((name, desc, op, len(data), t_ref, t_rs, speedup, target, met, t_c, speedup_c))
            print(f"  {name:8} {op}: rpyc {fmt_time(t_ref)}, rpyc_rs {fmt_time(t_rs)}, {speedup:.1f}x"
                  f"  (marshal {fmt_ref(t_c, speedup_c)})", file=sys.stderr, flush=True)

    lines = [
        "### brine: rpyc_rs.brine vs rpyc.core.brine",
        "",
        "| payload | op | bytes | rpyc | rpyc_rs | speedup | target | marshal (ref.) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, desc, op, nbytes, t_ref, t_rs, speedup, target, met, t_c, speedup_c in rows:
        mark = "met" if met else "**missed**"
        lines.append(
            f"| {name} ({desc}) | {op} | {nbytes:,} | {fmt_time(t_ref)} | {fmt_time(t_rs)} "
            f"| **{speedup:.1f}x** | {target:g}x {mark} | {fmt_ref(t_c, speedup_c)} |"
        )
    lines += [
        "",
        f"Median time per call over {args.repeats} paired runs of ~{args.run_ms:g} ms each; "
        "speedup is the median of the per-run ratios. GC on. "
        "marshal (ref.): CPython's built-in C serializer on the same value (its own format), "
        "with its speedup over rpyc: roughly the ceiling for a C-level implementation "
        "(n/a: marshal cannot write slices or NotImplemented).",
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"rpyc {rpyc.__version__}, rpyc_rs {rpyc_rs.__version__}, "
        f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs, "
        f"{datetime.date.today().isoformat()}.",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(table, encoding="utf-8")
    print(f"(written to {OUT.relative_to(ROOT)})")
    if missed:
        print("targets missed: " + "; ".join(missed), file=sys.stderr)
        if args.check:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
