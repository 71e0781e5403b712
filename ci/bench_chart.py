"""ci/bench section "chart": draws ``bench-results/calls.png`` from
``bench-results/calls.json`` (written by the ``calls`` section, which sorts
before this one, so a full ``ci/bench`` run charts the numbers it just
measured; ``ci/bench calls chart`` redoes both).

One panel per scenario of the calls section, stock rpyc beside rpyc-rs for
each pairing that ran, and a last panel with issue 5's speedups against
their targets, so the README reader sees the gain at a glance. Latency
panels use a log scale when the bars span more than a factor of 20 (the
raw floor and stock rpyc are far apart). Failed pairings are drawn as an
empty slot labelled FAILED, not left out, so a missing bar is never
mistaken for a fast one.

matplotlib is installed into the running venv with pip when missing (the
chart is the only thing that needs it, so the project's setup does not).

Usage: .venv/bin/python ci/bench_chart.py [--json PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"

#: Colour per (client, server) end kinds: greys for stock rpyc, oranges for
#: rpyc_rs (darker = both ends), blues for the native Rust ends.
COLOURS = {
    ("raw", "raw"): "#222222",
    ("stock", "stock"): "#9e9e9e",
    ("fast", "fast"): "#e66101",
    ("fast", "stock"): "#fdb863",
    ("stock", "fast"): "#f4a582",
    ("rust", "stock"): "#92c5de",
    ("rust", "fast"): "#4393c3",
    ("stock", "rust"): "#a6bddb",
    ("fast", "rust"): "#2166ac",
    ("rust", "rust"): "#053061",
}


def ensure_matplotlib():
    try:
        return importlib.import_module("matplotlib")
    except ImportError:
        print("bench_chart: installing matplotlib into the venv (pip)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "matplotlib"],
                       check=True)
        importlib.invalidate_caches()
        return importlib.import_module("matplotlib")


def panel(ax, rows, value, title, unit, fmt, higher_is_better=False, floor=None):
    """Horizontal bars, one per pairing; `value(row)` in display units."""
    labels, vals, colours = [], [], []
    for r in rows:
        labels.append(r["label"])
        v = None if r["error"] else value(r)
        vals.append(v)
        colours.append(COLOURS.get((r["client"], r["server"]), "#777777"))
    ys = list(range(len(rows)))[::-1]
    present = [v for v in vals if v]
    ax.barh(ys, [v or 0 for v in vals], color=colours, height=0.7)
    if present and max(present) / max(min(present), 1e-12) > 20:
        ax.set_xscale("log")
    if not present:  # every pairing failed: no axis to speak of
        ax.set_xlim(0, 1)
        ax.set_xticks([])
    for y, v in zip(ys, vals):
        if v is None:
            ax.text(0.01, y, "FAILED", transform=ax.get_yaxis_transform(), va="center", color="#b2182b",
                    fontweight="bold", fontsize=8)
        else:
            ax.text(v, y, " " + fmt(v), va="center", fontsize=7)
    if floor:
        ax.axvline(floor, color="#222222", ls="--", lw=1)
        ax.text(floor, ys[-1] - 0.45, " raw floor", fontsize=7, va="top")
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel(unit + ("  (higher is better)" if higher_is_better else "  (lower is better)"), fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    if present:
        lo, hi = ax.get_xlim()
        lo = lo if ax.get_xscale() == "log" else 0
        ax.set_xlim(lo, hi * (3 if ax.get_xscale() == "log" else 1.25))


def cpu_panel(ax, rows):
    """Stacked bars: client and server CPU per trivial call."""
    ys = list(range(len(rows)))[::-1]
    labels = [r["label"] for r in rows]
    for y, r in zip(ys, rows):
        if r["error"]:
            ax.text(0.01, y, "FAILED", transform=ax.get_yaxis_transform(), va="center", color="#b2182b",
                    fontweight="bold", fontsize=8)
            continue
        c = r["median"]["cpu_client"] * 1e6
        s = r["median"]["cpu_server"] * 1e6
        colour = COLOURS.get((r["client"], r["server"]), "#777777")
        ax.barh(y, c, color=colour, height=0.7)
        ax.barh(y, s, left=c, color=colour, height=0.7, hatch="///", edgecolor="white", lw=0)
        ax.text(c + s, y, f" {c:.0f} + {s:.0f} µs", va="center", fontsize=7)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_title("(a) trivial call: CPU per call, client (solid) + server (hatched)", fontsize=10, loc="left")
    ax.set_xlabel("µs of CPU (user + system)  (lower is better)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    lo, hi = ax.get_xlim()
    ax.set_xlim(0, hi * 1.3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", type=Path, default=RESULTS / "calls.json")
    ap.add_argument("--out", type=Path, default=RESULTS / "calls.png")
    args = ap.parse_args()
    if not args.json.exists():
        print(f"bench_chart: {args.json} not found; run the calls section first (ci/bench calls chart)",
              file=sys.stderr)
        return 1
    data = json.loads(args.json.read_text("utf-8"))
    groups = data["groups"]

    mpl = ensure_matplotlib()
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    us = lambda r: r["median"]["wall"] * 1e6  # noqa: E731
    ms = lambda r: r["median"]["wall"] * 1e3  # noqa: E731
    f_us = lambda v: f"{v:,.0f} µs" if v >= 100 else f"{v:.1f} µs"  # noqa: E731
    floor = None
    for r in groups.get("trivial", []):
        if r["scenario"] == "raw" and not r["error"]:
            floor = us(r)
    items = data["frame"].get("iter_items", 10_000)
    mib = data["frame"].get("bytes_size", 16 << 20) / (1 << 20)
    specs = [
        ("trivial", lambda: (us, "(a) trivial call f(1), wall per call", "µs", f_us, False, floor)),
        ("root", lambda: (us, "(b) conn.root.echo(1), wall per call", "µs", f_us, False, None)),
        ("iter", lambda: (ms, f"(c) iterate a {items:,}-item remote list", "ms per pass",
                          lambda v: f"{v:,.0f} ms", False, None)),
        ("bytes", lambda: (lambda r: r["median"]["mb_s"], f"(d) {mib:g} MiB bytes echo", "MB/s",
                           lambda v: f"{v:,.1f}", True, None)),
        ("hammer", lambda: (lambda r: r["median"]["calls_per_s"],
                            f"(e) {data.get('hammer_clients', 8)} client processes, one server", "calls/s",
                            lambda v: f"{v:,.0f}", True, None)),
    ]
    present = [(name, make()) for name, make in specs if groups.get(name)]
    if groups.get("trivial"):
        # CPU of the trivial call gets its own panel: it is where stock rpyc
        # loses most (the call is CPU-bound in Python, not network-bound).
        present.insert(1, ("trivial-cpu", None))
    checks = data.get("checks", [])
    n = len(present) + (1 if checks else 0)
    cols = 2
    rows_n = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(13, 1.2 + 2.9 * rows_n), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, (name, spec) in zip(flat, present):
        if name == "trivial-cpu":
            cpu_panel(ax, groups["trivial"])
        else:
            value, title, unit, fmt, higher, fl = spec
            panel(ax, groups[name], value, title, unit, fmt, higher, fl)
    if checks:
        ax = flat[len(present)]
        labels = [c["what"].replace("issue 4: ", "4: ") for c in checks]
        vals = []
        for c in checks:
            v = c["value"]
            # Plot every check as "times the target": ≥ 1 means met.
            if v is None:
                vals.append(0.0)
            elif c["higher_is_better"]:
                vals.append(v / c["target"])
            else:
                vals.append(c["target"] / v)
        ys = list(range(len(checks)))[::-1]
        ax.barh(ys, vals, color=["#1a9850" if c["met"] else "#d73027" for c in checks], height=0.7)
        ax.axvline(1.0, color="#222222", ls="--", lw=1)
        for y, c, v in zip(ys, checks, vals):
            txt = "FAILED" if c["value"] is None else f" {c['value']:.2f}x (target {c['target']:g}x)"
            ax.text(max(v, 0), y, txt, va="center", fontsize=7)
        ax.set_yticks(ys, labels, fontsize=8)
        ax.set_xlim(0, max(vals + [1.0]) * 1.6)
        ax.set_title("issue targets: measured / target (≥ 1 = met)", fontsize=10, loc="left")
        ax.set_xlabel("fraction of target", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    for ax in flat[n:]:
        ax.axis("off")
    fig.suptitle("rpyc-rs vs stock rpyc over loopback TCP (client → server); "
                 "rpyc_rs = rpyc with rpyc_rs.install(), Rust = native rpyc-rs", fontsize=11)
    fig.text(0.99, 0.005, f"ci/bench, {data.get('date', '')}; medians of {data.get('repeats')} rounds",
             ha="right", fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.01, 1, 0.97))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"bench_chart: wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
