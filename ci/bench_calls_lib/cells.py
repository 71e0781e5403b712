"""Reading ``ci/bench_calls.py``'s results a cell at a time: the median of
per-round ratios between two pairings (``paired_ratio``,
``paired_cpu_ratio``), times and ratios formatted (``fmt_us``, ``fmt_x``),
a target's verdict, a failed pairing's row, and the speedups the brine
section wrote.

Hands ``report`` (and ``ci/bench_proxy.py``, through ``bench_calls``) the
pieces its tables are made of.
"""

from __future__ import annotations

import re
import statistics
from typing import List, Optional

from .procs import RESULTS, Pairing


def paired_ratio(a: Pairing, b: Pairing, what: str, invert: bool = False) -> Optional[float]:
    """Median over rounds of a[what] / b[what] (b / a with invert), pairing
    the two runs of the same round."""
    if a.error or b.error:
        return None
    rb = {r["round"]: r for r in b.runs}
    ratios = []
    for r in a.runs:
        o = rb.get(r["round"])
        if o and r.get(what) and o.get(what):
            ratios.append(o[what] / r[what] if invert else r[what] / o[what])
    return statistics.median(ratios) if ratios else None


def paired_cpu_ratio(a: Pairing, b: Pairing) -> Optional[float]:
    """Median over rounds of total CPU per op, a / b."""
    if a.error or b.error:
        return None
    rb = {r["round"]: r for r in b.runs}
    out = []
    for r in a.runs:
        o = rb.get(r["round"])
        if o:
            tb = o["cpu_client"] + o["cpu_server"]
            if tb > 0:
                out.append((r["cpu_client"] + r["cpu_server"]) / tb)
    return statistics.median(out) if out else None


# ---------------------------------------------------------------------------
# formatting


def fmt_us(s: Optional[float]) -> str:
    if s is None:
        return "–"
    us = s * 1e6
    if us >= 1e6:
        return f"{us / 1e6:,.2f} s"
    if us >= 10_000:
        return f"{us / 1000:,.1f} ms"
    if us >= 100:
        return f"{us:,.0f} µs"
    return f"{us:.1f} µs"


def fmt_x(r: Optional[float]) -> str:
    return "–" if r is None else f"{r:.2f}x"


def verdict(value: Optional[float], target: float, higher_is_better: bool = True) -> str:
    if value is None:
        return "**n/a (failed)**"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "**missed**"


def failed_row(p: Pairing, cols: int) -> str:
    err = (p.error or "").replace("|", "/")
    if len(err) > 240:
        err = err[:240] + "…"
    return f"| {p.label} | **FAILED**: {err} |" + " |" * (cols - 2)


def brine_speedups() -> List[str]:
    """The speedups the brine section wrote, if it ran (it sorts first)."""
    md = RESULTS / "brine.md"
    if not md.exists():
        return []
    out = []
    for line in md.read_text("utf-8").splitlines():
        m = re.match(r"\|\s*(\w+)[^|]*\|\s*(dump|load)\s*\|.*\*\*([\d.]+)x\*\*\s*\|\s*([\d.]+)x", line)
        if m:
            out.append(f"{m.group(1)} {m.group(2)} {m.group(3)}x (target {m.group(4)}x)")
    return out
