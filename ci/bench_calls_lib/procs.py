"""The ends of ``ci/bench_calls.py``'s measurements: the section's paths
and constants, child processes speaking lines (``Proc``) with their CPU
time read from /proc (``CpuMark``, ``cpu_delta``), the servers of each kind
(``Servers``, shared across pairings) and the clients (``start_client``),
and ``Pairing``: one client kind against one server kind, its client
processes and its runs.

Hands the runner in ``ci/bench_calls.py`` what it starts and measures, and
``cells``/``report`` the ``Pairing`` they read. ``ROOT`` is the repository
root, as in ``ci/bench_calls.py`` before the split (one directory further
up from here).
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent.parent
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
