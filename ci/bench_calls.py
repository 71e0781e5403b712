"""ci/bench section "calls": RPyC calls over loopback TCP, stock rpyc against
rpyc-rs, beside a raw Rust TCP ping-pong (the floor), in one run.

Who talks to whom (every end is its own process; servers are started once
and shared, clients once per pairing):

====================  ==========================================================
``raw``               ``examples/bench`` raw TCP ping-pong, client and server
``rpyc``              stock Python rpyc (``ci/bench_peers/client.py`` / ``server.py``)
``rpyc_rs``           the same Python programs with ``rpyc_rs.install()``
``Rust``              the native Rust client (``examples/bench rpc-client``) or
                      server (``rpyc-rs serve``, the demo service)
====================  ==========================================================

Scenarios (issue numbers are the project's tracker):

- ``trivial``: ``echo(1)`` through a held method netref, every pairing,
  beside the raw ping-pong with the same number of bytes each way
  (measured from a stock call at start-up). Issues 3, 4 and 5(a).
- ``root``: ``conn.root.echo(1)``, GETATTR then CALL. Issue 5(b).
- ``iter``: one pass over a 10,000-item remote list. Issue 5(c).
- ``bytes``: a 16 MiB random ``bytes`` echo, as MB/s. Issue 5(d).
- ``hammer``: 8 client processes calling ``f(1)`` on one server for a fixed
  time; aggregate calls/s. Issue 5(e).
- brine dump/load is the ``brine`` section's (issue 5(f)); its speedups are
  quoted from ``bench-results/brine.md`` when that exists.

Method. The machine is small and shared (2 CPUs), so: every pairing of a
scenario runs once per round, the rounds repeat (``--repeats``; fewer for
the scenarios whose single operation takes seconds), and the order within
a round rotates, so a slow spell hits every pairing alike; ratios are
medians of the per-round ratios. Short runs and many rounds, because this
machine flips between a fast state and a slow one (a raw round trip takes
about 22 µs in one, 100-350 µs in the other) as other work comes and goes:
a short round keeps the runs it compares in the same state. What flips is
the cost of waking a process on the *other* CPU while that CPU is busy;
so by default the client and the server of a one-to-one scenario share
one CPU (``--pin``, all their threads), which takes cross-CPU wake-ups out
of every pairing alike: the raw round trip is then ~22 µs whatever else
runs, and a call costs what its two ends spend on it plus two context
switches. ``trivial`` and ``root`` are measured a second time unpinned
(fewer rounds, reported apart, no targets judged): what a deployment sees,
and the only way to see exchanges whose timing matters (Nagle meeting
delayed ACKs needs both ends running at once). ``--no-pin``
(``BENCH_PIN=off``) runs everything unpinned. The hammer always gets every
CPU: it is about using the machine. A run lasts about
``--run-s`` seconds (its operation count calibrated by a warm-up run).
Reported per pairing: wall time per operation (the run's total over its
count, median over rounds), the median single-operation latency (p50), and
CPU time per operation of the client (its own ``getrusage``) and of the
server (the kernel's run time of its threads across the run, from /proc,
read by this script; a server is idle between runs). OS accounting, so CPU
spent in the kernel counts, as it should. Comparisons with the raw
ping-pong are judged on p50: it is the round-trip latency proper, and the
least disturbed by the slow spells.

A pairing that fails (a driver error, a crash, a timeout) is reported as
FAILED with the error, and the section goes on with the rest.

Writes ``bench-results/calls.md`` (the tables) and ``bench-results/calls.json``
(everything, for ``ci/bench_chart.py``). Exit status 0 whatever the numbers
(1 with ``--check`` if a target is missed or a pairing failed).

Usage: .venv/bin/python ci/bench_calls.py [--only trivial,root,iter,bytes,hammer,anycpu]
       [--repeats N] [--long-repeats N] [--hammer-repeats N] [--run-s S]
       [--hammer-s S] [--iter-items N] [--bytes-mib N] [--check]
(``ci/bench`` runs it; any venv with rpyc and rpyc_rs works, since the Python
peers run with the interpreter that runs this script.) BENCH_QUICK=1 in the
environment: few short rounds and small payloads (1,000 items, 1 MiB), a
smoke run of the machinery in under a minute, not numbers to quote.

The processes, the ratios and cells, and the tables are in
``ci/bench_calls_lib/`` (``procs``, ``cells``, ``report``); this file keeps
the runner (``run_once``, ``bench_counted``, ``bench_hammer``), the frame
sizes of a trivial call, and ``main``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

from bench_calls_lib.cells import (  # noqa: F401  (bench_calls.X as before)
    brine_speedups,
    failed_row,
    fmt_us,
    fmt_x,
    paired_cpu_ratio,
    paired_ratio,
    verdict,
)
from bench_calls_lib.procs import (  # noqa: F401  (bench_calls.X as before)
    ALL_CPUS,
    BENCH_BIN,
    CLK_TCK,
    END_LABEL,
    HAMMER_CLIENTS,
    OUT_JSON,
    OUT_MD,
    PEERS,
    RESULTS,
    ROOT,
    RPYC_RS_BIN,
    START_TIMEOUT,
    VPY,
    CpuMark,
    MiB,
    Pairing,
    Proc,
    ProcError,
    Servers,
    client_argv,
    cpu_delta,
    rpyc_version,
    server_argv,
    set_affinity,
    start_client,
    version_guard,
)
from bench_calls_lib.report import OP_TARGETS, OP_TITLES, OPS, find, render, to_json  # noqa: F401


# ---------------------------------------------------------------------------
# measuring


def fail(p: Pairing, e: Exception):
    p.error = str(e)
    print(f"  FAILED {p.label} ({p.scenario}): {e}", file=sys.stderr, flush=True)
    p.stop_clients()


def run_once(p: Pairing, server: Proc, count: int, timeout: float) -> dict:
    client = p.procs[0]
    s0 = server.cpu()
    res = client.request(f"run {p.scenario} {count}", timeout)
    s1 = server.cpu()
    n = res["n"]
    return {"wall": res["wall"] / n, "p50": res["p50"], "cpu_client": res["cpu"] / n,
            "cpu_server": cpu_delta(s0, s1) / n, "n": n}


def bench_counted(pairings: List[Pairing], servers: Servers, frame, args, logdir, repeats: int) -> None:
    """Round-robin runs of a count-based scenario over `pairings`."""
    run_s = args.run_s
    live = []
    for p in pairings:
        try:
            _, addr = servers.get(p.server)
            p.procs = [start_client(f"{p.scenario}-{p.key}", p.client, addr, frame, logdir, servers.cpus)]
            server = servers.get(p.server)[0]
            # Warm-up, which also calibrates: one op, then (unless one op
            # is already long) enough for ~run_s/4.
            w = run_once(p, server, 1, args.op_timeout)
            est = max(w["wall"], 1e-6)
            if est < run_s / 8:
                probe = max(1, min(int(run_s / 4 / est), 100_000))
                w = run_once(p, server, probe, args.op_timeout + probe * est * 10)
            p.n = max(1, round(run_s / max(w["wall"], 1e-7)))
            live.append(p)
        except (ProcError, OSError, ValueError, KeyError) as e:
            fail(p, e)
    for rnd in range(repeats):
        k = rnd % max(1, len(live))
        order = live[k:] + live[:k]
        for p in order:
            if p.error:
                continue
            try:
                server = servers.get(p.server)[0]
                r = run_once(p, server, p.n, args.op_timeout + run_s * 20)
                r["round"] = rnd
                p.runs.append(r)
            except (ProcError, OSError, ValueError, KeyError) as e:
                fail(p, e)
        done = ", ".join(f"{p.label} {fmt_us(p.runs[-1]['wall'])}" for p in order if p.runs and not p.error)
        print(f"  round {rnd + 1}/{repeats}: {done}", file=sys.stderr, flush=True)
    for p in pairings:
        p.stop_clients()


def bench_hammer(pairings: List[Pairing], servers: Servers, frame, args, logdir) -> None:
    """8 clients per pairing, all calling at once for --hammer-s seconds."""
    live = []
    for p in pairings:
        try:
            _, addr = servers.get(p.server)
            for i in range(HAMMER_CLIENTS):
                p.procs.append(start_client(f"hammer-{p.key}-{i}", p.client, addr, frame, logdir, servers.cpus))
            for c in p.procs:  # warm-up
                c.request("run trivial 20", args.op_timeout)
            live.append(p)
        except (ProcError, OSError, ValueError, KeyError) as e:
            fail(p, e)
    for rnd in range(args.hammer_repeats):
        k = rnd % max(1, len(live))
        for p in live[k:] + live[:k]:
            if p.error:
                continue
            try:
                server = servers.get(p.server)[0]
                s0 = server.cpu()
                for c in p.procs:
                    c.send(f"time trivial {args.hammer_s}")
                res = []
                for c in p.procs:
                    r = c.answer(args.hammer_s * 10 + args.op_timeout)
                    if not r.get("ok"):
                        raise ProcError(f"{c.name}: {r.get('error', r)}")
                    res.append(r)
                s1 = server.cpu()
                calls = sum(r["n"] for r in res)
                p.runs.append({
                    "round": rnd,
                    "calls_per_s": sum(r["n"] / r["wall"] for r in res),
                    "cpu_client": sum(r["cpu"] for r in res) / calls,
                    "cpu_server": cpu_delta(s0, s1) / calls,
                    "n": calls,
                })
            except (ProcError, OSError, ValueError, KeyError) as e:
                fail(p, e)
        done = ", ".join(f"{p.label} {p.runs[-1]['calls_per_s']:,.0f}/s" for p in live if p.runs and not p.error)
        print(f"  round {rnd + 1}/{args.hammer_repeats}: {done}", file=sys.stderr, flush=True)
    for p in pairings:
        p.stop_clients()


# ---------------------------------------------------------------------------
# the frame sizes of a trivial call


def trivial_frame_sizes() -> Dict[str, int]:
    """Bytes on the wire each way for `f(1)` between stock rpyc peers,
    including the channel's header and trailing flusher, found by watching
    a real call in this process. The raw ping-pong sends exactly these."""
    import rpyc
    from rpyc.core.channel import Channel
    from rpyc.utils.server import OneShotServer

    class S(rpyc.Service):
        def exposed_echo(self, x):
            return x

    server = OneShotServer(S, hostname="127.0.0.1", port=0)
    server._listen()  # rpyc listens only in start(); connect must not race it
    t = threading.Thread(target=server.start, daemon=True)
    t.start()
    conn = rpyc.connect("127.0.0.1", server.port)
    try:
        f = conn.root.echo
        f(1)
        sent: List[int] = []
        orig = Channel.send

        def spy(self, data):
            if self is conn._channel:
                sent.append(len(data))
            return orig(self, data)

        recv_orig = Channel.recv
        got: List[int] = []

        def spy_recv(self):
            data = recv_orig(self)
            if self is conn._channel:
                got.append(len(data))
            return data

        Channel.send, Channel.recv = spy, spy_recv
        try:
            f(1)
        finally:
            Channel.send, Channel.recv = orig, recv_orig
    finally:
        conn.close()
        t.join(timeout=5)
    overhead = Channel.FRAME_HEADER.size + len(Channel.FLUSHER)
    return {"req": sent[0] + overhead, "rep": got[0] + overhead}


# ---------------------------------------------------------------------------


def main() -> int:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3 if quick else 11,
                    help="rounds of the trivial and root scenarios (default 11; 3 with BENCH_QUICK=1)")
    ap.add_argument("--long-repeats", type=int, default=2 if quick else 5,
                    help="rounds of iter and bytes, whose single operation takes seconds "
                         "(default 5; 2 with BENCH_QUICK=1)")
    ap.add_argument("--run-s", type=float, default=0.1 if quick else 0.5,
                    help="seconds per run (default 0.5; 0.1 with BENCH_QUICK=1)")
    ap.add_argument("--hammer-s", type=float, default=0.4 if quick else 2.0,
                    help="seconds per hammer run (default 2; 0.4 with BENCH_QUICK=1)")
    ap.add_argument("--hammer-repeats", type=int, default=2 if quick else 5,
                    help="rounds of the hammer (default 5; 2 with BENCH_QUICK=1)")
    ap.add_argument("--iter-items", type=int, default=1000 if quick else 10_000,
                    help="remote list length for `iter` (default 10,000; 1,000 with BENCH_QUICK=1)")
    ap.add_argument("--bytes-mib", type=int, default=1 if quick else 16,
                    help="MiB echoed by `bytes` (default 16; 1 with BENCH_QUICK=1)")
    ap.add_argument("--op-timeout", type=float, default=120.0,
                    help="seconds any single driver command may take beyond its run")
    ap.add_argument("--anycpu-repeats", type=int, default=2 if quick else 7,
                    help="rounds of the unpinned repeat of trivial and root (default 7; 2 with BENCH_QUICK=1)")
    ap.add_argument("--only", default="trivial,root,ops,iter,bytes,hammer,anycpu",
                    help="comma-separated scenarios to run (ops: issue 10's everyday operations; "
                         "anycpu: trivial, root and ops again, unpinned)")
    pin_env = os.environ.get("BENCH_PIN", "")
    ap.add_argument("--pin", type=int, default=None if pin_env in ("off", "no", "none") else
                    int(pin_env) if pin_env.isdigit() else max(ALL_CPUS),
                    help="the CPU that client and server of a one-to-one scenario share (default: the "
                         "last one; BENCH_PIN=N picks CPU N, BENCH_PIN=off or --no-pin turns pinning off)")
    ap.add_argument("--no-pin", dest="pin", action="store_const", const=None)
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed or a pairing failed")
    args = ap.parse_args()
    only = set(args.only.split(","))
    t_start = time.monotonic()

    # The Rust ends, built in release mode (incremental: seconds when fresh).
    build = subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--bin", "rpyc-rs", "--example", "bench"],
        cwd=ROOT, capture_output=True, text=True,
    )
    build_error = None
    if build.returncode != 0:
        build_error = "cargo build failed: " + " | ".join(build.stderr.strip().splitlines()[-4:])
        print(build_error, file=sys.stderr)

    frame = trivial_frame_sizes()
    frame.update(iter_items=args.iter_items, bytes_size=args.bytes_mib * MiB)
    print(f"  trivial call on the wire: {frame['req']} bytes out, {frame['rep']} back", file=sys.stderr)

    logdir = Path(tempfile.mkdtemp(prefix="rpyc-rs-bench-"))
    servers = Servers(logdir)
    if build_error:
        servers.errors["raw"] = servers.errors["rust"] = build_error

    P = Pairing
    groups: Dict[str, List[Pairing]] = {}
    if "trivial" in only:
        groups["trivial"] = [
            P("raw", "raw", "raw", label="raw TCP ping-pong (Rust ↔ Rust)"),
            # The same with poll(2) before each read, as the engine waits: it
            # shows the floor does not depend on the way of waiting.
            P("raw", "raw", "raw-poll", label="raw ping-pong, poll then read"),
            # And polling for the reply a while before sleeping, as an
            # rpyc-rs client waits for one (ChannelConfig::reply_spin; the
            # raw server sleeps at once).
            P("raw", "raw", "raw-spin", label="raw ping-pong, the client polling before it sleeps"),
            # And the server polling for the next request as well, as ours
            # do: the floor for our ends unpinned, where both poll.
            P("raw", "raw", "raw-spin-both", label="raw ping-pong, both ends polling before they sleep"),
            P("stock", "stock", "trivial"), P("fast", "fast", "trivial"),
            P("fast", "stock", "trivial"), P("stock", "fast", "trivial"),
            P("rust", "stock", "trivial"), P("rust", "fast", "trivial"),
            P("stock", "rust", "trivial"), P("fast", "rust", "trivial"),
            P("rust", "rust", "trivial"),
        ]
    if "root" in only:
        groups["root"] = [
            P("stock", "stock", "root"), P("fast", "fast", "root"),
            P("fast", "stock", "root"), P("stock", "fast", "root"),
            P("rust", "stock", "root"), P("stock", "rust", "root"), P("rust", "rust", "root"),
        ]
    if "ops" in only:
        # Issue 10's everyday operations, each beside the held call it is
        # counted in, stock and rpyc_rs at both ends, in the same rounds.
        groups["ops"] = [P(end, end, sc) for sc in OPS for end in ("stock", "fast")]
    if "iter" in only:
        groups["iter"] = [P("stock", "stock", "iter"), P("fast", "fast", "iter"),
                          P("fast", "stock", "iter"), P("stock", "fast", "iter")]
    if "bytes" in only:
        groups["bytes"] = [P("stock", "stock", "bytes"), P("fast", "fast", "bytes"),
                           P("fast", "stock", "bytes"), P("stock", "fast", "bytes"),
                           P("stock", "rust", "bytes"), P("fast", "rust", "bytes")]
    if args.pin is not None and "anycpu" in only:
        # The latency scenarios again without pinning, fewer rounds: what a
        # deployment sees, cross-CPU wake-ups included, and the exchanges
        # whose timing then changes (a GETATTR, CALL and DEL in a row can
        # meet Nagle and delayed ACKs only when the two ends run at once).
        groups["trivial-anycpu"] = [
            P("raw", "raw", "raw", label="raw TCP ping-pong (Rust ↔ Rust)"),
            P("raw", "raw", "raw-spin", label="raw ping-pong, the client polling before it sleeps"),
            P("raw", "raw", "raw-spin-both", label="raw ping-pong, both ends polling before they sleep"),
            P("stock", "stock", "trivial"), P("fast", "fast", "trivial"),
            P("rust", "stock", "trivial"), P("stock", "rust", "trivial"), P("rust", "rust", "trivial"),
        ]
        groups["root-anycpu"] = [
            P("stock", "stock", "root"), P("fast", "fast", "root"), P("fast", "stock", "root"),
            P("rust", "stock", "root"), P("rust", "rust", "root"),
        ]
        if "ops" in only:
            groups["ops-anycpu"] = [P("fast", "fast", sc) for sc in OPS]
    if "hammer" in only:
        groups["hammer"] = [P("stock", "stock", "trivial"), P("fast", "fast", "trivial"),
                            P("fast", "stock", "trivial"), P("stock", "fast", "trivial"),
                            P("stock", "rust", "trivial"), P("fast", "rust", "trivial"),
                            # The fastest client there is, against the stock
                            # server: what any client lighter than rpyc's own
                            # does to that server (issue 10's hammer target).
                            P("rust", "stock", "trivial")]

    try:
        for name, pairings in groups.items():
            print(f"-- {name} (at {time.monotonic() - t_start:.0f} s)", file=sys.stderr, flush=True)
            # One-to-one scenarios share one CPU (see the module doc); the
            # hammer is about using the machine, so it gets all of it.
            free = name == "hammer" or name.endswith("-anycpu") or args.pin is None
            servers.pin(ALL_CPUS if free else frozenset([args.pin]))
            if name == "hammer":
                bench_hammer(pairings, servers, frame, args, logdir)
            else:
                repeats = {"iter": args.long_repeats, "bytes": args.long_repeats}.get(
                    name, args.anycpu_repeats if name.endswith("-anycpu") else args.repeats)
                bench_counted(pairings, servers, frame, args, logdir, repeats)
    finally:
        servers.stop()

    elapsed = time.monotonic() - t_start
    md, checks = render(groups, frame, args, elapsed)
    print(md)
    RESULTS.mkdir(parents=True, exist_ok=True)
    OUT_MD.write_text(md, encoding="utf-8")
    OUT_JSON.write_text(json.dumps(to_json(groups, frame, args, checks, elapsed), indent=1), encoding="utf-8")
    print(f"(written to {OUT_MD.relative_to(ROOT)} and {OUT_JSON.relative_to(ROOT)}; driver logs in {logdir})")
    failed = [f"{n}: {p.label}" for n, ps in groups.items() for p in ps if p.error]
    missed = [c["what"] for c in checks if not c["met"]]
    if failed:
        print("pairings failed: " + "; ".join(failed), file=sys.stderr)
    if missed:
        print("targets missed: " + "; ".join(missed), file=sys.stderr)
    return 1 if args.check and (failed or missed) else 0


if __name__ == "__main__":
    sys.exit(main())
