"""The hostile-load suite's machinery (tests/hostile/suite.py): the sizes of
each attack at the ``quick`` and ``full`` scales, a server's figures from
/proc (RSS, peak RSS, CPU time), ``Target`` (a server under test in its own
process: ``rpyc-rs serve``, or py_demo_server.py installed or stock), the
healthy client that keeps calling a server while an attack runs, and raw
wire helpers (frames, version-aware request payloads, raw sockets).

Hands the cases (suite.py, resource_cases.py) everything they start,
measure and send; nothing here attacks anything.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"

# ---------------------------------------------------------------------------
# sizes: (quick, full)

SIZES = {
    "idle_conns": (300, 1100),
    "stall_conns": (100, 500),
    "bomb_mib": (64, 1000),
    "bomb_conns": (3, 3),
    "bigint_count": (100, 1000),
    "connects": (500, 2000),
    "idle_mem_conns": (200, 500),
    "soak_seconds": (6, 60),
    "stalled_writers": (8, 8),
}


def size(name: str, scale: str) -> int:
    return SIZES[name][0 if scale == "quick" else 1]


def raise_fd_limit(want: int = 8192) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


# ---------------------------------------------------------------------------
# /proc figures of a server process


def _status(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    return _status(pid, "VmRSS")


def peak_kib(pid: int) -> int:
    return _status(pid, "VmHWM")


def settled_peak(pid: int, limit: float = 30.0) -> int:
    """The peak RSS once the server has stopped working on what it was
    sent (its CPU time still for a second), or after ``limit`` seconds."""
    end = time.monotonic() + limit
    last = cpu_seconds(pid)
    while time.monotonic() < end:
        time.sleep(1.0)
        now = cpu_seconds(pid)
        if now - last < 0.1:
            break
        last = now
    return peak_kib(pid)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# ---------------------------------------------------------------------------
# targets


class Target:
    """A server under test, in its own process."""

    def __init__(self, kind: str, bin_path: Optional[str], extra: Optional[List[str]] = None):
        self.kind = kind
        if kind.startswith("rs-"):
            mode = kind[3:]
            cmd = [bin_path, "serve", "--port", "0", "--mode", mode, *(extra or [])]
        else:
            cmd = [sys.executable, os.path.join(HERE, "py_demo_server.py")]
            if kind == "installed":
                cmd.append("--install")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        line = self._first_line(30.0)
        if line.startswith("PORT "):
            self.port = int(line.split()[1])
        elif line.startswith("listening on "):
            self.port = int(line.split()[2].rsplit(":", 1)[1])
        else:
            self.stop()
            raise RuntimeError(f"{kind}: unexpected first line {line!r}")

    def _first_line(self, timeout: float) -> str:
        import selectors

        deadline = time.monotonic() + timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError("server did not start")
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    raise RuntimeError("server exited before listening")
                buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


# ---------------------------------------------------------------------------
# the healthy client: another process calling the server all along


HEALTHY_CODE = r"""
import json, sys, threading, time
import rpyc
host, port = sys.argv[1], int(sys.argv[2])
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
calls = errors = fresh = 0
worst = 0.0
lat = []
first_error = None
conn = None
i = 0
# At least a few rounds, even if the block it ran for was short.
while not stop.is_set() or i < 3:
    i += 1
    t0 = time.monotonic()
    try:
        if conn is None or i % 10 == 0:
            # Every tenth round a fresh connection: new clients must be served too.
            if conn is not None:
                conn.close()
            conn = rpyc.connect(host, port, config={"sync_request_timeout": 20})
            fresh += 1
        ok = conn.root.echo(i) == i and conn.root.add(i, 1) == i + 1
        if not ok:
            raise AssertionError("wrong answer")
    except Exception as e:
        errors += 1
        first_error = first_error or f"{type(e).__name__}: {e}"
        conn = None
    dt = time.monotonic() - t0
    calls += 1
    worst = max(worst, dt)
    lat.append(dt)
    stop.wait(0.05)
lat.sort()
print(json.dumps({"calls": calls, "errors": errors, "fresh_connections": fresh, "worst_s": round(worst, 3),
                  "p50_ms": round(lat[len(lat) // 2] * 1000, 2) if lat else None, "first_error": first_error}))
"""


@contextmanager
def healthy_client(port: int):
    """Runs the healthy client for the duration of the block; its report
    lands in the yielded dict."""
    report: Dict = {}
    proc = subprocess.Popen([sys.executable, "-c", HEALTHY_CODE, HOST, str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield report
    finally:
        try:
            out, _ = proc.communicate("", timeout=60)
            report.update(json.loads(out.strip().splitlines()[-1]))
        except Exception as e:  # a hung or crashed healthy client is a failure
            proc.kill()
            proc.wait()
            report.update({"calls": 0, "errors": 1, "first_error": f"healthy client failed: {e}"})


def healthy_ok(h: Dict) -> bool:
    return h.get("calls", 0) > 0 and h.get("errors", 1) == 0


# ---------------------------------------------------------------------------
# raw wire helpers (version-aware message framing)


def frame(payload: bytes, compressed: bool = False) -> bytes:
    return struct.pack("!LB", len(payload), 1 if compressed else 0) + payload + b"\n"


def rpyc6() -> bool:
    import rpyc

    return int(rpyc.__version__.split(".")[0]) >= 6


def request_payload(seq: int, handler: int, args_brine: bytes) -> bytes:
    """A request message whose args are already brine bytes."""
    from rpyc.core import brine

    small = lambda n: bytes([0x50 + n])  # noqa: E731 (brine small int)
    body = b"\x11" + small(handler) + args_brine  # (handler, args)
    if rpyc6():
        return brine.I1.pack(1) + b"\x11" + small(seq) + body  # msg, then (seq, body)
    return b"\x12" + small(1) + small(seq) + body  # (msg, seq, body)


def connect_raw(port: int, timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection((HOST, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def close_all(socks) -> None:
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
