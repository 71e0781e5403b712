"""ci/bench section "proxy": what `rpyc-rs proxy` adds to a held call.

Target (issue 12): relaying without trace costs at most one extra raw
round trip over the direct call. Measured the way ``ci/bench_calls.py``
measures calls, with its peers, drivers and runner (imported, not copied):
the same trivial call (``f(1)``, ``f = conn.root.echo`` held) directly and
through a proxy, for the Rust client against the Rust server (where the
proxy's share is the most visible) and for stock rpyc at both ends, beside
the raw Rust TCP ping-pong (the floor) directly and through the proxy
(which relays its bytes like any other). Rounds rotate.

The floor of any relay is measured in the same rounds: the same pairings
through ``examples/bench relay``, a minimal relay with nothing but the
syscalls a relay cannot avoid, in the two shapes the proxy has: a thread
per direction (blocking read then write: the shape of the proxy's pumps,
which trace, record and translate) and, for the raw ping-pong, one thread
for both directions with ``poll(2)`` (the shape of the proxy's untraced
relay, ``src/proxy/raw.rs``, which is non-blocking on top). What the proxy
adds above the floor is the proxy's; what the floor itself adds is the
cost of relaying on this machine, whatever the relay (a relay does per
message what each peer does: a wake-up, a read, a write and a sleep).

CPU time per call is reported for the relay (the proxy, the floor
relay) and for client + server, direct and relayed: OS accounting from
/proc, the steadiest figure on a shared machine, and the one that says
where the added time goes.

Pinned (the target's figures): client, relay and server share one CPU, as
``bench_calls`` pins its one-to-one scenarios. Unpinned, the same pairings
again with fewer rounds (``--unpinned-repeats``), reported beside: what a
deployment sees, cross-CPU wake-ups included. A traced proxy (``--trace``,
its output read and dropped) is measured pinned, for information: it
decodes every message before passing it on.

The proxy's dialects are given (the venv's rpyc version at both ends), so
it relays raw bytes from the first one.

Writes ``bench-results/proxy.md``. BENCH_QUICK=1: a smoke run of the
machinery (few short rounds), not numbers to quote.

Usage: .venv/bin/python ci/bench_proxy.py [--repeats N] [--unpinned-repeats N] [--run-s S] [--check]
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
    """`bc.Servers`, plus the server of KIND reached through a relay (one
    per kind, started on first use, on the servers' CPUs): see `get`."""

    def __init__(self, logdir: Path):
        super().__init__(logdir)
        self.proxies: Dict[str, bc.Proc] = {}
        self.proxy_addrs: Dict[str, str] = {}

    def get(self, kind: str):
        """``KIND+proxy``, ``KIND+trace``: the server of KIND through an
        `rpyc-rs proxy` (plain or tracing); ``KIND+floor``,
        ``KIND+floorpoll``: through the minimal relay (threads or poll)."""
        if "+" not in kind:
            return super().get(kind)
        base, how = kind.split("+", 1)
        server, addr = super().get(base)
        if kind not in self.proxies:
            if how in ("proxy", "trace"):
                dialect = "5" if bc.rpyc_version().startswith("5.") else "6"
                argv = [str(bc.RPYC_RS_BIN), "proxy", "--listen", "127.0.0.1:0", "--to", addr,
                        "--client-dialect", dialect, "--server-dialect", dialect]
                if how == "trace":
                    argv.append("--trace")
            else:
                argv = [str(bc.BENCH_BIN), "relay", "--to", addr] + (["--poll"] if how == "floorpoll" else [])
            proc = bc.Proc(f"relay-{kind}", argv, self.logdir, self.cpus)
            line = proc.readline(bc.START_TIMEOUT)
            m = re.match(r"listening on (\S+:\d+)", line)
            if not m:
                proc.stop()
                raise bc.ProcError(f"relay-{kind}: unexpected first line {line!r}")
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


#: The rows: (name, client kind, server kind, scenario, traced too, poll floor too).
ROWS = [
    ("raw TCP ping-pong", "raw", "raw", "raw", False, True),
    ("Rust client → Rust server", "rust", "rust", "trivial", True, False),
    ("stock rpyc → stock rpyc", "stock", "stock", "trivial", False, False),
]


def measuring_relays(servers: "ProxiedServers"):
    """`bc.run_once`, plus the relay's CPU time per operation (``cpu_relay``,
    from /proc, like the server's), for the pairings that go through one."""
    plain = bc.run_once

    def run_once(p: "bc.Pairing", server: "bc.Proc", count: int, timeout: float) -> dict:
        relay = servers.proxies.get(p.server)
        if relay is None:
            return plain(p, server, count, timeout)
        r0 = relay.cpu()
        res = plain(p, server, count, timeout)
        res["cpu_relay"] = bc.cpu_delta(r0, relay.cpu()) / res["n"]
        return res
    return run_once


def make_pairings(unpinned: bool):
    """Per row: direct, proxy, floor relay, poll floor (or None), traced
    (or None)."""
    P = bc.Pairing
    tag = ", unpinned" if unpinned else ""
    rows = []
    for name, client, server, scenario, traced, poll in ROWS:
        rows.append((
            name,
            P(client, server, scenario, label=f"{name}, direct{tag}"),
            P(client, f"{server}+proxy", scenario, label=f"{name}, through the proxy{tag}"),
            P(client, f"{server}+floor", scenario, label=f"{name}, through the floor relay{tag}"),
            P(client, f"{server}+floorpoll", scenario, label=f"{name}, through the poll floor relay{tag}")
            if poll else None,
            P(client, f"{server}+trace", scenario, label=f"{name}, through a tracing proxy{tag}")
            if traced and not unpinned else None,
        ))
    return rows


def ratio(p: "bc.Pairing", direct: "bc.Pairing", raw: Optional[float]) -> Optional[float]:
    """(relayed - direct) p50 over the raw round trip, or None."""
    if p is None or p.error or direct.error or not raw:
        return None
    r, d = p.median("p50"), direct.median("p50")
    return None if r is None or d is None else (r - d) / raw


def peers(p: "bc.Pairing") -> Optional[float]:
    """Client + server CPU per operation (medians), or None."""
    c, s = p.median("cpu_client"), p.median("cpu_server")
    return None if c is None or s is None else c + s


def table(rows, title: str, judged: bool):
    raw_direct = rows[0][1]
    raw = raw_direct.median("p50") if not raw_direct.error else None
    head = ("| pairing | p50 direct | p50 proxy | added | added / raw round trip"
            + (" | target ≤ 1" if judged else "")
            + " | p50 floor relay | floor: added / raw round trip | p50 poll floor: added / raw | traced, p50 "
            "| CPU / call, relay: proxy, floor | CPU / call, client + server: direct, proxy |")
    lines = [title, "", head, "|---|" + "---:|" * (head.count("|") - 2)]
    checks = []
    for name, direct, proxy, floor, poll, traced in rows:
        if direct.error or proxy.error:
            lines.append(f"| {name} | FAILED: {direct.error or proxy.error} |")
            checks.append(False)
            continue
        d, r = direct.median("p50"), proxy.median("p50")
        added = (r - d) if d is not None and r is not None else None
        rr = ratio(proxy, direct, raw)
        met = rr is not None and rr <= 1.0
        checks.append(met)
        fr, pr = ratio(floor, direct, raw), ratio(poll, direct, raw)
        f50 = floor.median("p50") if not floor.error else None
        t50 = traced.median("p50") if traced is not None and not traced.error else None
        fmt = lambda x: "–" if x is None else f"{x:.2f}"  # noqa: E731
        lines.append(f"| {name} | {bc.fmt_us(d)} | {bc.fmt_us(r)} | {bc.fmt_us(added)} | {fmt(rr)}"
                     + (f" | {'met' if met else '**missed**'}" if judged else "")
                     + f" | {bc.fmt_us(f50) if not floor.error else 'FAILED'} | {fmt(fr)} | "
                     f"{fmt(pr) if poll is not None else ''} | {bc.fmt_us(t50) if traced is not None else ''} "
                     f"| {bc.fmt_us(proxy.median('cpu_relay'))}, {bc.fmt_us(floor.median('cpu_relay'))} "
                     f"| {bc.fmt_us(peers(direct))}, {bc.fmt_us(peers(proxy))} |")
    lines += ["", f"(raw round trip, the unit: {bc.fmt_us(raw)})"]
    return lines, checks


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3 if quick else 11)
    ap.add_argument("--unpinned-repeats", type=int, default=2 if quick else 7)
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
    pinned, unpinned = make_pairings(False), make_pairings(True)
    flat = lambda rows: [p for row in rows for p in row[1:] if p is not None]  # noqa: E731
    bc.run_once = measuring_relays(servers)  # bench_counted's measuring step, the relay's CPU added
    try:
        servers.pin(frozenset([max(bc.ALL_CPUS)]))
        bc.bench_counted(flat(pinned), servers, frame, args, logdir, args.repeats)
        if args.unpinned_repeats > 0:
            servers.pin(bc.ALL_CPUS)
            bc.bench_counted(flat(unpinned), servers, frame, args, logdir, args.unpinned_repeats)
    finally:
        servers.stop()

    intro = (f"Trivial call `f(1)` (one round trip; {frame['req']} bytes out, {frame['rep']} back), "
             f"p50 medians; rpyc {bc.rpyc_version()}. *Floor relay*: `examples/bench relay`, a minimal "
             "relay with a thread per direction (blocking read then write); *poll floor*: the same with "
             "one thread and `poll(2)` for both directions, the shape of the proxy's untraced relay."
             + (" BENCH_QUICK: a smoke run, not numbers to quote." if quick else ""))
    lines = ["## rpyc-rs proxy: a held call, direct and relayed", "", intro, ""]
    t1, checks = table(pinned, f"### Client, relay and server on one CPU ({args.repeats} rounds; the target's figures)",
                       True)
    lines += t1
    if args.unpinned_repeats > 0:
        t2, _ = table(unpinned, f"### Unpinned ({args.unpinned_repeats} rounds; for information)", False)
        lines += [""] + t2
    lines += ["", f"({time.monotonic() - t0:.0f} s)"]
    md = "\n".join(lines) + "\n"
    print(md)
    bc.RESULTS.mkdir(parents=True, exist_ok=True)
    OUT_MD.write_text(md, encoding="utf-8")
    print(f"(written to {OUT_MD.relative_to(bc.ROOT)}; logs in {logdir})")
    return 1 if args.check and not all(checks) else 0


if __name__ == "__main__":
    sys.exit(main())
