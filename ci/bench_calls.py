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
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results"
OUT_MD = RESULTS / "calls.md"
OUT_JSON = RESULTS / "calls.json"
VPY = sys.executable
BENCH_BIN = ROOT / "target" / "release" / "examples" / "bench"
RPYC_RS_BIN = ROOT / "target" / "release" / "rpyc-rs"
PEERS = ROOT / "ci" / "bench_peers"
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: Seconds to wait for a process to print its first line.
START_TIMEOUT = 60.0
#: Hammer clients per pairing (issue 5(e)).
HAMMER_CLIENTS = 8
MiB = 1024 * 1024

# ---------------------------------------------------------------------------
# processes


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent():
    # PR_SET_PDEATHSIG: if this script dies (even by SIGKILL), the kernel
    # sends its children SIGTERM, so no server outlives the benchmark.
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)


ALL_CPUS = frozenset(os.sched_getaffinity(0))


def set_affinity(pid: int, cpus) -> None:
    """Moves every thread of `pid` onto `cpus` (threads it starts later
    inherit it)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return
    for tid in tids:
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:
            pass  # the thread ended meanwhile


class ProcError(RuntimeError):
    pass


@dataclass
class CpuMark:
    #: utime + stime from /proc/<pid>/stat: every thread, living or gone,
    #: but in clock ticks (10 ms).
    ticks: float
    #: Sum of the living threads' /proc/<pid>/task/<tid>/schedstat run
    #: time: nanosecond precision, but blind to threads that have ended.
    sched: Optional[float]


def cpu_delta(a: CpuMark, b: CpuMark) -> float:
    """Seconds of CPU between two marks: the precise per-thread sum, unless
    the coarse whole-process count shows more (a thread that ran and ended
    in between), in which case that. Both are the kernel's own accounting
    (the same run time getrusage reports)."""
    coarse = b.ticks - a.ticks
    if a.sched is None or b.sched is None:
        return coarse
    fine = b.sched - a.sched
    return coarse if coarse - fine > 2.0 / CLK_TCK else fine


class Proc:
    """A child process speaking lines on stdout; stderr goes to a log file
    whose tail is quoted when something fails."""

    def __init__(self, name: str, argv: List[str], logdir: Path, cpus=ALL_CPUS):
        self.name = name
        self.log_path = logdir / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".log")
        self._log = open(self.log_path, "wb")
        self.p = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            preexec_fn=lambda: (_die_with_parent(), os.sched_setaffinity(0, cpus)),
        )
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in self.p.stdout:
            self.lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.lines.put(None)

    @property
    def pid(self) -> int:
        return self.p.pid

    def log_tail(self, n: int = 6) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-n:])

    def readline(self, timeout: float) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise ProcError(f"{self.name}: no answer within {timeout:.0f} s") from None
        if line is None:
            self.p.wait(timeout=5)
            tail = self.log_tail()
            raise ProcError(f"{self.name}: exited with status {self.p.returncode}"
                            + (f" ({tail})" if tail else ""))
        return line

    def send(self, line: str):
        try:
            self.p.stdin.write((line + "\n").encode())
            self.p.stdin.flush()
        except OSError as e:
            raise ProcError(f"{self.name}: cannot send {line!r}: {e}") from None

    def answer(self, timeout: float) -> dict:
        """The next JSON line (skipping any chatter)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.1, deadline - time.monotonic()))
            if line.startswith("{"):
                return json.loads(line)

    def request(self, cmd: str, timeout: float) -> dict:
        self.send(cmd)
        res = self.answer(timeout)
        if not res.get("ok"):
            raise ProcError(f"{self.name}: {res.get('error', res)}")
        return res

    def cpu(self) -> "CpuMark":
        """The process's CPU time so far, two ways (see `cpu_delta`)."""
        with open(f"/proc/{self.pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2:].split()
        ticks = (int(fields[11]) + int(fields[12])) / CLK_TCK
        ns = 0
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            tids = []
        for tid in tids:
            try:
                with open(f"/proc/{self.pid}/task/{tid}/schedstat", "rb") as f:
                    ns += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass  # the thread ended meanwhile
        return CpuMark(ticks, ns / 1e9 if tids else None)

    def stop(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()  # drivers quit, servers exit on EOF
            except OSError:
                pass
            try:
                self.p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.p.terminate()  # rpyc-rs serve stops on SIGTERM
                try:
                    self.p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.p.kill()
                    self.p.wait()
        self._log.close()


# ---------------------------------------------------------------------------
# servers and clients

#: End kinds -> what a person reads in the tables.
END_LABEL = {"raw": "raw", "stock": "rpyc", "fast": "rpyc_rs", "rust": "Rust"}


def server_argv(kind: str) -> List[str]:
    if kind == "raw":
        return [str(BENCH_BIN), "pingpong-serve"]
    if kind == "rust":
        return [str(RPYC_RS_BIN), "serve", "--host", "127.0.0.1", "--port", "0"]
    backend = {"stock": "stock", "fast": "rpyc_rs"}[kind]
    return [VPY, str(PEERS / "server.py"), "--backend", backend]


def client_argv(kind: str, addr: str, frame: Dict[str, int]) -> List[str]:
    """`frame` carries the raw ping-pong's sizes and the Python scenarios'."""
    if kind == "raw":
        return [str(BENCH_BIN), "pingpong-client", addr, "--req", str(frame["req"]), "--rep", str(frame["rep"])]
    if kind == "rust":
        # rpyc 5.x frames messages differently, and a client must choose.
        return [str(BENCH_BIN), "rpc-client", addr] + (["--rpyc5"] if rpyc_version().startswith("5.") else [])
    backend = {"stock": "stock", "fast": "rpyc_rs"}[kind]
    return [VPY, str(PEERS / "client.py"), "--backend", backend, addr,
            "--iter-items", str(frame["iter_items"]), "--bytes-size", str(frame["bytes_size"])]


class Servers:
    """One server per kind, started on first use and shared."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        #: The CPUs servers run on now (see `pin`).
        self.cpus = ALL_CPUS
        self.procs: Dict[str, Proc] = {}
        self.addrs: Dict[str, str] = {}
        self.errors: Dict[str, str] = {}

    def get(self, kind: str):
        if kind in self.errors:
            raise ProcError(self.errors[kind])
        if kind not in self.procs:
            proc = Proc(f"server-{kind}", server_argv(kind), self.logdir, self.cpus)
            try:
                line = proc.readline(START_TIMEOUT)
                m = re.match(r"listening on (\S+:\d+)", line)
                if not m:
                    raise ProcError(f"server-{kind}: unexpected first line {line!r}")
                v = re.search(r"\(rpyc (\S+) ", line)
                version_guard(f"server-{kind}", v.group(1) if v else None)
            except ProcError as e:
                proc.stop()
                self.errors[kind] = str(e)
                raise
            self.procs[kind] = proc
            self.addrs[kind] = m.group(1)
        return self.procs[kind], self.addrs[kind]

    def pin(self, cpus):
        """Moves the running servers, and those started later, onto `cpus`."""
        self.cpus = cpus
        for p in self.procs.values():
            set_affinity(p.pid, cpus)

    def stop(self):
        for p in self.procs.values():
            p.stop()


def rpyc_version() -> str:
    import rpyc
    return rpyc.__version__


def version_guard(name: str, seen: Optional[str]):
    """Fails a pairing whose process loaded another rpyc than this script:
    the venv is shared, and `ci/test` reinstalls rpyc (6.0.x, then 5.3.x)
    while it runs, which would mix framings and garble every call."""
    if seen and seen != rpyc_version():
        raise ProcError(f"{name}: loaded rpyc {seen}, but the benchmark started with rpyc {rpyc_version()}: "
                        "the venv changed under the benchmark (is ci/test running?)")


def start_client(name: str, kind: str, addr: str, frame, logdir: Path, cpus=ALL_CPUS) -> Proc:
    proc = Proc(name, client_argv(kind, addr, frame), logdir, cpus)
    try:
        hello = proc.answer(START_TIMEOUT)
        # First: a failure from a mixed-up venv is explained as that.
        version_guard(name, hello.get("rpyc"))
        if not hello.get("ready"):
            raise ProcError(f"{name}: {hello.get('error', hello)}" + (f" ({proc.log_tail(3)})" if proc.log_tail() else ""))
    except ProcError:
        proc.stop()
        raise
    return proc


# ---------------------------------------------------------------------------
# measuring


@dataclass
class Pairing:
    client: str
    server: str
    #: The driver's scenario name (the raw ping-pong has its own).
    scenario: str
    label: str = ""
    #: Per round: dicts of per-operation seconds (wall, p50, cpu_client,
    #: cpu_server) or, for the hammer, aggregate numbers.
    runs: List[dict] = field(default_factory=list)
    error: Optional[str] = None
    n: int = 0
    procs: List[Proc] = field(default_factory=list)

    def __post_init__(self):
        if not self.label:
            self.label = f"{END_LABEL[self.client]} → {END_LABEL[self.server]}"

    @property
    def key(self) -> str:
        return f"{self.client}>{self.server}"

    def median(self, what: str) -> Optional[float]:
        vals = [r[what] for r in self.runs if r.get(what) is not None]
        return statistics.median(vals) if vals else None

    def stop_clients(self):
        for proc in self.procs:
            proc.stop()
        self.procs = []


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


def find(groups, group: str, client: str, server: str, scenario: Optional[str] = None) -> Optional[Pairing]:
    for p in groups.get(group, []):
        if p.client == client and p.server == server and scenario in (None, p.scenario):
            return p
    return None


#: Issue 10's operations (``ci/bench_peers/client.py`` scenarios), the held
#: call first: each is counted in held calls.
OPS = ["trivial", "root", "attr", "newobj", "callback"]
OP_TITLES = {
    "root": "`conn.root.echo(1)` (GETATTR + CALL)",
    "attr": "`c.value`, reading an attribute (GETATTR)",
    "newobj": "`conn.root.counter(3).increment()`: a new object and a method call",
    "callback": "`conn.root.call_back(double, 21)`: a callback round",
}
#: (target as the issue states it, the limit in held calls)
OP_TARGETS = {"root": ("≤ 2.2", 2.2), "attr": ("≤ 1.3", 1.3), "newobj": ("≤ 6", 6.0), "callback": ("≤ 4", 4.0)}


def render(groups, frame, args, elapsed):
    import rpyc
    try:
        import rpyc_rs
        rs_version = rpyc_rs.__version__
    except Exception as e:  # the section still reports the stock side
        rs_version = f"unavailable ({e})"

    L: List[str] = []
    checks: List[dict] = []
    items, mib = frame["iter_items"], frame["bytes_size"] / MiB

    def check(what, value, target, higher=True, unit="x"):
        met = value is not None and (value >= target if higher else value <= target)
        checks.append({"what": what, "value": value, "target": target, "higher_is_better": higher, "met": met})
        sign = "≥" if higher else "≤"
        return f"{sign} {target:g}{unit} {verdict(value, target, higher)}"

    L += ["### RPyC calls: stock rpyc vs rpyc-rs, beside a raw TCP ping-pong", ""]
    L += ["Ends: **rpyc** = stock Python rpyc; **rpyc_rs** = the same program after "
          "`rpyc_rs.install()`; **Rust** = the native rpyc-rs client (`examples/bench rpc-client`) "
          "or server (`rpyc-rs serve`); **raw** = a Rust TCP ping-pong moving the same bytes as a "
          f"trivial call ({frame['req']} out, {frame['rep']} back) and nothing else: the floor. "
          "Loopback TCP, every end its own process; Python servers are rpyc's `ThreadedServer`.", ""]

    stock_triv = find(groups, "trivial", "stock", "stock")
    raw = find(groups, "trivial", "raw", "raw")

    # -- the full trivial-call table
    if "trivial" in groups:
        L += ["#### Trivial call: `f(1)` with `f = conn.root.echo` held (one round trip)", "",
              "| client → server | wall / call | p50 | CPU client | CPU server | CPU total | vs raw: p50 (wall) | speedup vs rpyc → rpyc (wall) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for p in groups["trivial"]:
            if p.error:
                L.append(failed_row(p, 8))
                continue
            cc, cs = p.median("cpu_client"), p.median("cpu_server")
            tot = statistics.median([r["cpu_client"] + r["cpu_server"] for r in p.runs])
            vs_raw = (f"{fmt_x(paired_ratio(p, raw, 'p50'))} ({fmt_x(paired_ratio(p, raw, 'wall'))})"
                      if raw and p is not raw else "–")
            sp = paired_ratio(p, stock_triv, "wall", invert=True) if stock_triv and p is not stock_triv else None
            L.append(f"| {p.label} | **{fmt_us(p.median('wall'))}** | {fmt_us(p.median('p50'))} | {fmt_us(cc)} "
                     f"| {fmt_us(cs)} | {fmt_us(tot)} | {vs_raw if p is not raw else '1x'} "
                     f"| {fmt_x(sp) if p is not stock_triv else '1x'} |")
        L.append("")

    # -- per-issue summaries
    if "trivial" in groups and raw and stock_triv:
        rust_py = find(groups, "trivial", "rust", "stock")
        L += ["#### Issue 3: the Rust client against a stock Python rpyc server", "",
              "| measure | value |", "|---|---:|"]
        if rust_py and not rust_py.error:
            L += [f"| Rust → rpyc, wall / call | {fmt_us(rust_py.median('wall'))} |",
                  f"| rpyc → rpyc, wall / call | {fmt_us(stock_triv.median('wall'))} |",
                  f"| raw ping-pong, wall / round trip | {fmt_us(raw.median('wall'))} |",
                  f"| p50: Rust → rpyc, rpyc → rpyc, raw | {fmt_us(rust_py.median('p50'))}, "
                  f"{fmt_us(stock_triv.median('p50'))}, {fmt_us(raw.median('p50'))} |",
                  f"| Rust → rpyc speedup over rpyc → rpyc (wall) | **{fmt_x(paired_ratio(rust_py, stock_triv, 'wall', invert=True))}** |",
                  f"| Rust → rpyc / raw ping-pong: p50 (wall) | {fmt_x(paired_ratio(rust_py, raw, 'p50'))} "
                  f"({fmt_x(paired_ratio(rust_py, raw, 'wall'))}) |",
                  f"| CPU / call, client + server: Rust → rpyc vs rpyc → rpyc | "
                  f"{fmt_us(rust_py.median('cpu_client'))} + {fmt_us(rust_py.median('cpu_server'))} vs "
                  f"{fmt_us(stock_triv.median('cpu_client'))} + {fmt_us(stock_triv.median('cpu_server'))} |"]
        else:
            L.append(f"| Rust → rpyc | **FAILED**: {rust_py.error if rust_py else 'not run'} |")
        L.append("")

        py_rust = find(groups, "trivial", "stock", "rust")
        rust_rust = find(groups, "trivial", "rust", "rust")
        L += ["#### Issue 4: the Rust server", "", "| measure | value | target |", "|---|---:|---|"]
        if py_rust and not py_rust.error:
            sp = paired_ratio(py_rust, stock_triv, "wall", invert=True)
            L += [f"| rpyc → Rust server, wall / call | {fmt_us(py_rust.median('wall'))} | |",
                  f"| rpyc → rpyc server, wall / call | {fmt_us(stock_triv.median('wall'))} | |",
                  f"| speedup a Rust server gives a stock client | **{fmt_x(sp)}** | {check('issue 4: rpyc → Rust server faster than rpyc → rpyc', sp, 1.0)} |",
                  f"| server CPU / call: Python → Rust | {fmt_us(stock_triv.median('cpu_server'))} → {fmt_us(py_rust.median('cpu_server'))} | |"]
        else:
            L.append(f"| rpyc → Rust server | **FAILED**: {py_rust.error if py_rust else 'not run'} | |")
        if rust_rust and not rust_rust.error:
            r = paired_ratio(rust_rust, raw, "p50")
            L += [f"| Rust → Rust, wall / call (p50) | {fmt_us(rust_rust.median('wall'))} "
                  f"({fmt_us(rust_rust.median('p50'))}) | |",
                  f"| raw ping-pong, wall / round trip (p50) | {fmt_us(raw.median('wall'))} "
                  f"({fmt_us(raw.median('p50'))}) | |",
                  f"| Rust → Rust / raw ping-pong, p50 | **{fmt_x(r)}** | {check('issue 4: Rust → Rust within 1.25x of raw', r, 1.25, higher=False)} |",
                  f"| Rust → Rust / raw ping-pong, wall | {fmt_x(paired_ratio(rust_rust, raw, 'wall'))} | |",
                  f"| CPU / call, client + server: Rust → Rust vs raw | {fmt_us(rust_rust.median('cpu_client'))} + "
                  f"{fmt_us(rust_rust.median('cpu_server'))} vs {fmt_us(raw.median('cpu_client'))} + "
                  f"{fmt_us(raw.median('cpu_server'))} | |"]
        else:
            L.append(f"| Rust → Rust | **FAILED**: {rust_rust.error if rust_rust else 'not run'} | |")
        L.append("")

    # -- issue 5 summary
    L += ["#### Issue 5: `rpyc_rs.install()` at both ends vs stock rpyc at both ends", "",
          "| scenario | rpyc → rpyc | rpyc_rs → rpyc_rs | ratio | target | rpyc_rs → rpyc | rpyc → rpyc_rs |",
          "|---|---:|---:|---:|---|---:|---:|"]

    def mixed(group, metric, fmt, invert):
        cells = []
        s = find(groups, group, "stock", "stock")
        for c, sv in (("fast", "stock"), ("stock", "fast")):
            p = find(groups, group, c, sv)
            if not p or p.error:
                cells.append("FAILED" if p else "–")
            else:
                cells.append(f"{fmt(p)} ({fmt_x(paired_ratio(p, s, metric, invert=invert)) if s else '–'})")
        return cells

    def row5(name, group, metric, fmt, target, invert=True, what=None):
        s = find(groups, group, "stock", "stock")
        f = find(groups, group, "fast", "fast")
        if not s or not f:
            return
        if s.error or f.error:
            bad = "; ".join(f"{p.label}: {p.error}" for p in (s, f) if p.error)
            L.append(f"| {name} | {'FAILED' if s.error else fmt(s)} | {'FAILED' if f.error else fmt(f)} "
                     f"| – | {check(what or name, None, target)} | {' | '.join(mixed(group, metric, fmt, invert))} |")
            L.append(f"| | *{bad.replace('|', '/')[:300]}* | | | | | |")
            return
        r = paired_ratio(f, s, metric, invert=invert)
        L.append(f"| {name} | {fmt(s)} | {fmt(f)} | **{fmt_x(r)}** | {check(what or name, r, target)} "
                 f"| {' | '.join(mixed(group, metric, fmt, invert))} |")

    if "trivial" in groups:
        wall = lambda p: fmt_us(p.median("wall"))  # noqa: E731
        row5("(a) trivial call `f(1)`: wall / call (speedup)", "trivial", "wall", wall, 2.0,
             what="5a: trivial call ≥2x faster (wall)")
        s, f = stock_triv, find(groups, "trivial", "fast", "fast")
        if s and f and not s.error and not f.error:
            tot = lambda p: statistics.median([r["cpu_client"] + r["cpu_server"] for r in p.runs])  # noqa: E731
            cpu_r = paired_cpu_ratio(s, f)
            L.append(f"| (a) trivial call: CPU / call, client + server (CPU saved) | {fmt_us(tot(s))} "
                     f"({fmt_us(s.median('cpu_client'))} + {fmt_us(s.median('cpu_server'))}) | {fmt_us(tot(f))} "
                     f"({fmt_us(f.median('cpu_client'))} + {fmt_us(f.median('cpu_server'))}) | **{fmt_x(cpu_r)}** "
                     f"| {check('5a: trivial call ≥3x less CPU', cpu_r, 3.0)} | | |")
            if raw and not raw.error:
                r = paired_ratio(f, raw, "p50")
                L.append(f"| (a) trivial call / raw ping-pong (p50 {fmt_us(raw.median('p50'))}, wall "
                         f"{fmt_us(raw.median('wall'))}): p50 ratio (wall ratio) | {fmt_x(paired_ratio(s, raw, 'p50'))} "
                         f"({fmt_x(paired_ratio(s, raw, 'wall'))}) | **{fmt_x(r)}** ({fmt_x(paired_ratio(f, raw, 'wall'))}) | | "
                         f"{check('5a: trivial call within 1.3x of raw ping-pong', r, 1.3, higher=False)} | | |")
    if "root" in groups:
        row5("(b) `conn.root.echo(1)`: wall / call", "root", "wall", lambda p: fmt_us(p.median("wall")), 2.0,
             what="5b: root.method ≥2x faster")
    if "iter" in groups:
        row5(f"(c) iterate a {items:,}-item remote list: wall / pass", "iter", "wall",
             lambda p: fmt_us(p.median("wall")), 2.0, what=f"5c: {items:,}-item iteration ≥2x faster")
    if "bytes" in groups:
        for p in groups["bytes"]:
            for r in p.runs:
                r["mb_s"] = frame["bytes_size"] / r["wall"] / 1e6
        row5(f"(d) {mib:g} MiB bytes echo: MB/s (payload once per echo)", "bytes", "mb_s",
             lambda p: f"{p.median('mb_s'):,.1f} MB/s", 5.0, invert=False, what=f"5d: {mib:g} MiB echo ≥5x throughput")
    if "hammer" in groups:
        row5(f"(e) {HAMMER_CLIENTS} client processes, one server: calls/s", "hammer", "calls_per_s",
             lambda p: f"{p.median('calls_per_s'):,.0f}/s", 3.0, invert=False, what=f"5e: {HAMMER_CLIENTS} processes ≥3x aggregate")
    bs = brine_speedups()
    L.append("| (f) brine dump/load | see `brine` section | | "
             + (", ".join(bs) if bs else "(bench-results/brine.md not found)") + " | | | |")
    L += ["", "Mixed columns: value (ratio to rpyc → rpyc, higher is better).", ""]

    # -- detail tables for the other scenarios
    def detail(group, title, per):
        if group not in groups:
            return
        raw_p = find(groups, group, "raw", "raw")
        L.extend([f"#### {title}", "",
                  f"| client → server | wall / {per} | p50 | CPU client / {per} | CPU server / {per} "
                  f"| speedup vs rpyc → rpyc |" + (" vs raw: p50 (wall) |" if raw_p else ""),
                  "|---|---:|---:|---:|---:|---:|" + ("---:|" if raw_p else "")])
        s = find(groups, group, "stock", "stock")
        for p in groups[group]:
            if p.error:
                L.append(failed_row(p, 7 if raw_p else 6))
                continue
            sp = paired_ratio(p, s, "wall", invert=True) if s and p is not s else None
            line = (f"| {p.label} | **{fmt_us(p.median('wall'))}** | {fmt_us(p.median('p50'))} "
                    f"| {fmt_us(p.median('cpu_client'))} | {fmt_us(p.median('cpu_server'))} "
                    f"| {fmt_x(sp) if s and p is not s else '1x' if p is s else '–'} |")
            if raw_p:
                line += (" 1x |" if p is raw_p else
                         f" {fmt_x(paired_ratio(p, raw_p, 'p50'))} ({fmt_x(paired_ratio(p, raw_p, 'wall'))}) |")
            L.append(line)
        L.append("")

    if "ops" in groups:
        L += ["#### Issue 10: everyday operations, counted in held calls", "",
              "Each operation's time over a held call `f(1)` measured in the same rounds (median of the "
              "per-round ratios), `rpyc_rs.install()` at both ends; stock rpyc at both ends beside it.", "",
              "| operation | rpyc_rs: wall / op | in held calls | stock: wall / op | rpyc_rs vs stock "
              "| unpinned: in held calls | target |", "|---|---:|---:|---:|---:|---:|---|"]
        held_f = find(groups, "ops", "fast", "fast", "trivial")
        held_s = find(groups, "ops", "stock", "stock", "trivial")
        held_any = find(groups, "ops-anycpu", "fast", "fast", "trivial")
        for sc in OPS[1:]:
            f = find(groups, "ops", "fast", "fast", sc)
            s = find(groups, "ops", "stock", "stock", sc)
            fa = find(groups, "ops-anycpu", "fast", "fast", sc)
            if not f or f.error or not held_f or held_f.error:
                L.append(f"| {OP_TITLES[sc]} | FAILED | | | | | |")
                continue
            held = paired_ratio(f, held_f, "wall", invert=False)
            vs = paired_ratio(f, s, "wall", invert=True) if s and not s.error else None
            held_u = paired_ratio(fa, held_any, "wall", invert=False) if fa and held_any and not fa.error else None
            target, limit = OP_TARGETS[sc]
            met = held is not None and held <= limit
            checks.append({"what": f"10: {sc} ≤ {limit} held calls", "value": held, "target": limit,
                           "higher_is_better": False, "met": met})
            extra = ""
            if sc == "root" and vs is not None:
                ok10 = vs >= 10
                checks.append({"what": "10: root.method ≥10x stock", "value": vs, "target": 10.0,
                               "higher_is_better": True, "met": ok10})
                extra = f"; ≥ 10x stock: {'met' if ok10 else '**missed**'}"
                # The floor: GETATTR then CALL is two round trips, and no
                # implementation makes one faster than the raw ping-pong.
                raw = find(groups, "trivial", "raw", "raw", "raw")
                if not ok10 and s and not s.error and raw and not raw.error and raw.median("wall"):
                    need, floor = s.median("wall") / 10, 2 * raw.median("wall")
                    if need <= floor:
                        extra += (f" (10x is {fmt_us(need)} a call, not more than two raw round trips, "
                                  f"{fmt_us(floor)}: out of any implementation's reach)")
            L.append(f"| {OP_TITLES[sc]} | {fmt_us(f.median('wall'))} | **{held:.2f}** | "
                     f"{fmt_us(s.median('wall')) if s and not s.error else 'FAILED'} | {fmt_x(vs)} | "
                     f"{f'{held_u:.2f}' if held_u is not None else '-'} | {target}: "
                     f"{'met' if met else '**missed**'}{extra} |")
        it = find(groups, "iter", "fast", "fast")
        tr = find(groups, "trivial", "fast", "fast")
        if it and tr and not it.error and not tr.error and it.median("wall") and tr.median("wall"):
            per_item = it.median("wall") / (items + 1) / tr.median("wall")
            met = per_item <= 1.2
            checks.append({"what": "10: iteration ≤ 1.2 held calls per item", "value": per_item, "target": 1.2,
                           "higher_is_better": False, "met": met})
            L.append(f"| iterating a remote list, per item | {fmt_us(it.median('wall') / (items + 1))} | "
                     f"**{per_item:.2f}** | | | - | ≤ 1.2: {'met' if met else '**missed**'} |")
        hs, hf = find(groups, "hammer", "stock", "stock"), find(groups, "hammer", "fast", "stock")
        if hs and hf and not hs.error and not hf.error:
            r = paired_ratio(hf, hs, "calls_per_s", invert=False)
            L.append(f"| {HAMMER_CLIENTS} rpyc_rs clients → stock server, calls/s vs {HAMMER_CLIENTS} stock clients "
                     f"| {hf.median('calls_per_s'):,.0f}/s | | {hs.median('calls_per_s'):,.0f}/s | {fmt_x(r)} | - "
                     f"| {check('10: rpyc_rs clients never slow a stock server', r, 1.0)} |")
        hr = find(groups, "hammer", "rust", "stock")
        if hs and hr and not hs.error and not hr.error:
            r = paired_ratio(hr, hs, "calls_per_s", invert=False)
            L.append(f"| the same with {HAMMER_CLIENTS} native Rust clients (no Python at all) "
                     f"| {hr.median('calls_per_s'):,.0f}/s | | {hs.median('calls_per_s'):,.0f}/s | {fmt_x(r)} | - "
                     "| (the floor any client reaches: see the text) |")
        rr, raw = find(groups, "trivial", "rust", "rust"), find(groups, "trivial", "raw", "raw", "raw")
        if rr and raw and not rr.error and not raw.error:
            r = paired_ratio(rr, raw, "p50", invert=False)
            L.append(f"| Rust client → Rust server, p50 vs the raw ping-pong | {fmt_us(rr.median('p50'))} | | "
                     f"| | - | {check('10: Rust ↔ Rust ≤1.25x raw', r, 1.25, higher=False)} ({fmt_x(r)}) |")
        L.append("")

    detail("root", "`conn.root.echo(1)` (GETATTR + CALL; the Rust client does the same two requests)", "call")
    detail("iter", f"One pass over a {items:,}-item remote list ({items + 1:,} round trips)", "pass")
    detail("bytes", f"{mib:g} MiB random bytes echo (`f(payload)`, zlib level 1 both ways, as rpyc's default)",
           "echo")
    if "trivial-anycpu" in groups or "root-anycpu" in groups:
        L += ["#### The same without pinning (client and server on any CPU)", "",
              f"Fewer rounds ({args.anycpu_repeats}); what a deployment sees, cross-CPU wake-ups included, "
              "so it swings with whatever else this shared machine runs. The targets above are judged pinned.", ""]
    detail("trivial-anycpu", "Trivial call `f(1)`, any CPU", "call")
    detail("root-anycpu", "`conn.root.echo(1)`, any CPU", "call")
    if "hammer" in groups:
        L += [f"#### {HAMMER_CLIENTS} client processes calling `f(1)` on one server for {args.hammer_s:g} s", "",
              "| clients → server | aggregate calls/s | CPU clients / call | CPU server / call | vs rpyc → rpyc |",
              "|---|---:|---:|---:|---:|"]
        s = find(groups, "hammer", "stock", "stock")
        for p in groups["hammer"]:
            if p.error:
                L.append(failed_row(p, 5))
                continue
            sp = paired_ratio(p, s, "calls_per_s", invert=False) if s and p is not s else None
            L.append(f"| {p.label} | **{p.median('calls_per_s'):,.0f}** | {fmt_us(p.median('cpu_client'))} "
                     f"| {fmt_us(p.median('cpu_server'))} | {fmt_x(sp) if p is not s else '1x'} |")
        L.append("")

    L += [f"Medians over {args.repeats} rounds of ~{args.run_s:g} s runs (iter and bytes: {args.long_repeats} "
          f"rounds; hammer: {args.hammer_repeats} rounds of {args.hammer_s:g} s), "
          "pairings interleaved within each round; ratios are medians of per-round ratios. "
          "*wall / call* is a run's wall time over its count (waits and wake-ups included), *p50* "
          "the median single call. CPU: client from its own `getrusage`, server from /proc "
          "(per-thread `schedstat` run time). Targets against the raw ping-pong are judged on p50. "
          + (f"One-to-one scenarios: client and server pinned to CPU {args.pin} (no cross-CPU wake-ups); "
             "the hammer runs on every CPU." if args.pin is not None else "Nothing pinned."),
          f"Python {platform.python_version()}, rpyc {rpyc.__version__}, rpyc_rs {rs_version}, "
          f"{platform.machine()} {platform.system()} {platform.release()}, {os.cpu_count()} CPUs, "
          f"{datetime.date.today().isoformat()}; section took {elapsed:.0f} s."]
    return "\n".join(L) + "\n", checks


def to_json(groups, frame, args, checks, elapsed):
    out = {"frame": frame, "pin": args.pin, "repeats": args.repeats, "run_s": args.run_s, "hammer_s": args.hammer_s,
           "hammer_repeats": args.hammer_repeats, "long_repeats": args.long_repeats,
           "anycpu_repeats": args.anycpu_repeats, "hammer_clients": HAMMER_CLIENTS,
           "elapsed_s": elapsed, "date": datetime.datetime.now().isoformat(timespec="seconds"),
           "checks": checks, "groups": {}}
    for name, ps in groups.items():
        out["groups"][name] = [{
            "label": p.label, "client": p.client, "server": p.server, "scenario": p.scenario,
            "error": p.error, "ops_per_run": p.n, "runs": p.runs,
            "median": {k: p.median(k) for k in ("wall", "p50", "cpu_client", "cpu_server", "mb_s", "calls_per_s")},
        } for p in ps]
    return out


if __name__ == "__main__":
    sys.exit(main())
