"""ci/bench section "proxy": what `rpyc-rs proxy` adds to a held call.

Target (issue 12): relaying without trace costs at most one extra raw
round trip over the direct call. Measured the way ``ci/bench_calls.py``
measures calls, with its peers, drivers and runner (imported, not copied):
the same trivial call (``f(1)``, ``f = conn.root.echo`` held) directly and
through a proxy, for the Rust client against the Rust server (where the
proxy's share is the most visible) and for stock rpyc at both ends, beside
the raw Rust TCP ping-pong (the floor) directly and through the proxy
(which relays its bytes like any other). Client, proxy and server share
one CPU, as ``bench_calls`` pins its one-to-one scenarios; rounds rotate.
A traced proxy (``--trace``, its output read and dropped) is measured too,
for information: it decodes every message before passing it on.

The proxy's dialects are given (the venv's rpyc version at both ends), so
it relays raw bytes from the first one.

Writes ``bench-results/proxy.md``. BENCH_QUICK=1: a smoke run of the
machinery (few short rounds), not numbers to quote.

Usage: .venv/bin/python ci/bench_proxy.py [--repeats N] [--run-s S] [--check]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_calls as bc  # noqa: E402  (the runner, peers and drivers)

OUT_MD = bc.RESULTS / "proxy.md"


class ProxiedServers(bc.Servers):
    """`bc.Servers`, plus kinds ``KIND+proxy`` and ``KIND+trace``: the
    server of KIND reached through an `rpyc-rs proxy` (one per kind, started
    on first use, on the servers' CPUs)."""

    def __init__(self, logdir: Path):
        super().__init__(logdir)
        self.proxies: Dict[str, bc.Proc] = {}
        self.proxy_addrs: Dict[str, str] = {}

    def get(self, kind: str):
        if "+" not in kind:
            return super().get(kind)
        base, how = kind.split("+", 1)
        server, addr = super().get(base)
        if kind not in self.proxies:
            dialect = "5" if bc.rpyc_version().startswith("5.") else "6"
            argv = [str(bc.RPYC_RS_BIN), "proxy", "--listen", "127.0.0.1:0", "--to", addr,
                    "--client-dialect", dialect, "--server-dialect", dialect]
            if how == "trace":
                argv.append("--trace")
            proc = bc.Proc(f"proxy-{kind}", argv, self.logdir, self.cpus)
            line = proc.readline(bc.START_TIMEOUT)
            m = re.match(r"listening on (\S+:\d+)", line)
            if not m:
                proc.stop()
                raise bc.ProcError(f"proxy-{kind}: unexpected first line {line!r}")
            self.proxies[kind] = proc
            self.proxy_addrs[kind] = m.group(1)
            # Trace lines pile up in the Proc's queue; drain them.
            if how == "trace":
                import threading

                def drain(q=proc.lines):
                    while q.get() is not None:
                        pass
                threading.Thread(target=drain, daemon=True).start()
        return server, self.proxy_addrs[kind]

    def pin(self, cpus):
        super().pin(cpus)
        for p in self.proxies.values():
            bc.set_affinity(p.pid, cpus)

    def stop(self):
        for p in self.proxies.values():
            p.stop()
        super().stop()


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3 if quick else 11)
    ap.add_argument("--run-s", type=float, default=0.1 if quick else 0.5)
    ap.add_argument("--op-timeout", type=float, default=60.0)
    ap.add_argument("--check", action="store_true", help="exit 1 if the target is missed or a pairing failed")
    args = ap.parse_args()
    t0 = time.monotonic()

    build = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "rpyc-rs", "--example", "bench"],
                           cwd=bc.ROOT, capture_output=True, text=True)
    if build.returncode != 0:
        print("cargo build failed:\n" + build.stderr, file=sys.stderr)
        return 1
    frame = bc.trivial_frame_sizes()
    frame.update(iter_items=1000, bytes_size=bc.MiB)

    logdir = Path(tempfile.mkdtemp(prefix="rpyc-rs-bench-proxy-"))
    servers = ProxiedServers(logdir)
    P = bc.Pairing
    pairs = [
        ("raw TCP ping-pong", P("raw", "raw", "raw", label="raw ping-pong, direct"),
         P("raw", "raw+proxy", "raw", label="raw ping-pong, through the proxy"), None),
        ("Rust client → Rust server", P("rust", "rust", "trivial", label="Rust → Rust, direct"),
         P("rust", "rust+proxy", "trivial", label="Rust → Rust, through the proxy"),
         P("rust", "rust+trace", "trivial", label="Rust → Rust, through a tracing proxy")),
        ("stock rpyc → stock rpyc", P("stock", "stock", "trivial", label="rpyc → rpyc, direct"),
         P("stock", "stock+proxy", "trivial", label="rpyc → rpyc, through the proxy"), None),
    ]
    pairings = [p for _, d, x, t in pairs for p in (d, x, t) if p is not None]
    servers.pin(frozenset([max(bc.ALL_CPUS)]))
    try:
        bc.bench_counted(pairings, servers, frame, args, logdir, args.repeats)
    finally:
        servers.stop()

    raw = pairs[0][1].median("p50")
    lines = [
        "## rpyc-rs proxy: a held call, direct and relayed",
        "",
        f"Trivial call `f(1)` (one round trip; {frame['req']} bytes out, {frame['rep']} back), "
        f"medians of {args.repeats} rounds; client, proxy and server on one CPU. rpyc {bc.rpyc_version()}."
        + (" BENCH_QUICK: a smoke run, not numbers to quote." if quick else ""),
        "",
        "| pairing | p50 direct | p50 relayed | added | added / raw round trip | target ≤ 1 | traced, p50 |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    checks = []
    for name, direct, relayed, traced in pairs:
        if direct.error or relayed.error:
            lines.append(f"| {name} | FAILED: {direct.error or relayed.error} | | | | | |")
            checks.append(False)
            continue
        d, r = direct.median("p50"), relayed.median("p50")
        added = (r - d) if d is not None and r is not None else None
        ratio = added / raw if added is not None and raw else None
        met = ratio is not None and ratio <= 1.0
        checks.append(met)
        t = traced.median("p50") if traced is not None and not traced.error else None
        lines.append(f"| {name} | {bc.fmt_us(d)} | {bc.fmt_us(r)} | {bc.fmt_us(added)} | "
                     f"{'–' if ratio is None else f'{ratio:.2f}'} | {'met' if met else '**missed**'} | "
                     f"{bc.fmt_us(t) if traced is not None else ''} |")
    lines += ["", f"(raw round trip, the unit: {bc.fmt_us(raw)}; {time.monotonic() - t0:.0f} s)"]
    md = "\n".join(lines) + "\n"
    print(md)
    bc.RESULTS.mkdir(parents=True, exist_ok=True)
    OUT_MD.write_text(md, encoding="utf-8")
    print(f"(written to {OUT_MD.relative_to(bc.ROOT)}; logs in {logdir})")
    return 1 if args.check and not all(checks) else 0


if __name__ == "__main__":
    sys.exit(main())
