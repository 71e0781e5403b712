"""The hostile-load suite (issue 14): every attack of the issue, run against
`rpyc-rs serve` (threaded and pool), an installed ThreadedServer
(``rpyc_rs.install()``) and stock rpyc's ThreadedServer, with the outcome
recorded for each. While an attack runs, a healthy client in another
process keeps calling the server and checking its answers and latency.

    python tests/hostile/suite.py --bin target/release/rpyc-rs \\
        [--targets rs-threaded,rs-pool,installed,stock] [--cases a,b] \\
        [--scale quick|full] [--json out.json]

``quick`` is the bounded version ci/test runs (through
tests/python/test_hostile.py); ``full`` uses the issue's sizes (500
stalled connections, 1100 idle ones, 1 GiB zlib bombs, 2000 connects, a
4 x 60 s soak) and produces the README's "Under hostile load" figures.

Each case returns a dict: ``ok`` (the server held up: it stayed alive,
the healthy client saw only right answers, and the case's own check
passed), ``outcome`` (one line for the table), figures, and ``healthy``
(the healthy client's calls, errors and worst latency). Everything talks
to 127.0.0.1 only, with timeouts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from contextlib import contextmanager
from typing import Callable, Dict, List, Optional

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


# ---------------------------------------------------------------------------
# the cases


def case_sigterm_grace(t: Target, scale: str) -> Dict:
    """Item 1: SIGTERM while a handler sleeps 30 s; the server must be gone
    within its grace period (5 s) plus slack; a second signal is immediate."""
    import rpyc

    c = rpyc.connect(HOST, t.port, config={"sync_request_timeout": 60})
    res = rpyc.async_(c.root.sleep)(30)
    time.sleep(0.5)
    t0 = time.monotonic()
    t.proc.send_signal(signal.SIGTERM)
    try:
        t.proc.wait(15)
        gone = time.monotonic() - t0
    except subprocess.TimeoutExpired:
        gone = None
    if gone is None:
        t.proc.send_signal(signal.SIGTERM)
        try:
            t.proc.wait(5)
            second = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            second = None
        outcome = f"still up 15 s after SIGTERM; second signal: {'exit' if second else 'still up'}"
    else:
        outcome = f"exited {gone:.1f} s after SIGTERM"
    del res
    try:
        c.close()
    except Exception:
        pass
    # Second signal: a fresh rs server, SIGTERM twice during a sleep.
    second_s = None
    if t.kind.startswith("rs-") and gone is not None:
        t2 = Target(t.kind, ARGS_BIN)
        c2 = rpyc.connect(HOST, t2.port)
        rpyc.async_(c2.root.sleep)(30)
        time.sleep(0.5)
        t0 = time.monotonic()
        t2.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        t2.proc.send_signal(signal.SIGTERM)
        try:
            t2.proc.wait(5)
            second_s = time.monotonic() - t0
        except subprocess.TimeoutExpired:
            pass
        t2.stop()
        outcome += f"; twice: {second_s:.1f} s" if second_s is not None else "; twice: still up"
    ok = gone is not None and gone < 10 and (second_s is None or second_s < 2) if t.kind.startswith("rs-") \
        else gone is not None
    return {"ok": ok, "outcome": outcome, "exit_s": gone, "second_signal_s": second_s}


def case_idle_connections(t: Target, scale: str) -> Dict:
    """Item 2: many idle TCP connections; new clients are still served."""
    n = size("idle_conns", scale)
    socks = []
    with healthy_client(t.port) as h:
        for _ in range(n):
            socks.append(connect_raw(t.port))
        time.sleep(1.5)
        import rpyc

        t0 = time.monotonic()
        try:
            c = rpyc.connect(HOST, t.port, config={"sync_request_timeout": 10})
            served = c.root.add(2, 3) == 5
            c.close()
        except Exception as e:
            served = False
            print(f"  new client: {type(e).__name__}: {e}", file=sys.stderr)
        took = time.monotonic() - t0
        time.sleep(1.0)
    close_all(socks)
    return {"ok": served and healthy_ok(h), "outcome": f"{n} idle: new client {'served' if served else 'NOT served'}"
            f" in {took * 1000:.0f} ms", "healthy": h}


def case_refused_past_cap(t: Target, scale: str) -> Dict:
    """Item 2: past --max-connections a client is closed at once, never
    left hanging (rs targets only: stock has no cap)."""
    if not t.kind.startswith("rs-"):
        return {"ok": True, "outcome": "no cap (serves all)", "skipped": True}
    t2 = Target(t.kind, ARGS_BIN, ["--max-connections", "20"])
    socks = [connect_raw(t2.port) for _ in range(20)]
    time.sleep(0.5)
    import rpyc

    t0 = time.monotonic()
    try:
        c = rpyc.connect(HOST, t2.port, config={"sync_request_timeout": 10})
        c.root.add(1, 1)
        verdict = "served"
    except EOFError:
        verdict = "closed"
    except Exception as e:
        verdict = f"{type(e).__name__}"
    took = time.monotonic() - t0
    close_all(socks)
    t2.stop()
    return {"ok": verdict == "closed" and took < 5, "outcome": f"21st client {verdict} after {took * 1000:.0f} ms"}


def case_counter_wrap(t: Target, scale: str) -> Dict:
    """Item 3: counter(2**63-1).increment() is an error or right, never wrapped."""
    import rpyc

    c = rpyc.connect(HOST, t.port)
    try:
        v = c.root.counter(2**63 - 1).increment()
        outcome, ok = f"returned {v}", v == 2**63
    except Exception as e:
        outcome, ok = f"{type(e).__name__}", type(e).__name__ == "OverflowError"
    c.close()
    return {"ok": ok, "outcome": outcome}


def case_big_header_stall(t: Target, scale: str) -> Dict:
    """Item 4: connections that send a header claiming ~1 GiB and stall."""
    n = size("stall_conns", scale)
    base = rss_kib(t.pid)
    socks = []
    with healthy_client(t.port) as h:
        for _ in range(n):
            s = connect_raw(t.port)
            s.sendall(struct.pack("!LB", 0x3FFF_FFF0, 0) + b"x")
            socks.append(s)
        time.sleep(2.0)
        peak = rss_kib(t.pid)
    close_all(socks)
    grown = max(0, peak - base)
    return {"ok": healthy_ok(h) and grown < 64 * 1024, "outcome": f"{n} stalled: RSS +{grown / 1024:.1f} MiB",
            "rss_growth_kib": grown, "healthy": h}


def _bigint_payload(count: int, digits: int = 100_000) -> bytes:
    one = b"\x17" + struct.pack("!I", digits) + b"7" * digits
    args = b"\x15" + struct.pack("!I", count) + one * count
    return request_payload(1, 1, args)  # a PING whose argument is the ints


def case_big_ints(t: Target, scale: str) -> Dict:
    """Item 5: one compressed frame of big ints (100,000 digits each)."""
    n = size("bigint_count", scale)
    z = zlib.compress(_bigint_payload(n), 9)
    cpu0 = cpu_seconds(t.pid)
    with healthy_client(t.port) as h:
        s = connect_raw(t.port, timeout=120)
        s.sendall(frame(z, compressed=True))
        try:
            s.recv(1 << 16)  # a reply, an error or the close
        except OSError:
            pass
        s.close()
        settled_peak(t.pid)  # until the server's CPU time stands still
    used = cpu_seconds(t.pid) - cpu0
    return {"ok": healthy_ok(h) and used < 5, "outcome": f"{n} ints in {len(z) // 1024} KiB: {used:.2f} CPU s",
            "cpu_s": round(used, 2), "frame_kib": len(z) // 1024, "healthy": h}


def _bomb(mib: int) -> bytes:
    co = zlib.compressobj(9)
    chunk = b"\0" * (1 << 20)
    return b"".join(co.compress(chunk) for _ in range(mib)) + co.flush()


def case_zlib_bombs(t: Target, scale: str) -> Dict:
    """Item 6: parallel zlib bombs, each under the frame limit."""
    mib, k = size("bomb_mib", scale), size("bomb_conns", scale)
    bomb = frame(_bomb(mib), compressed=True)
    base = peak_kib(t.pid)
    socks = []
    with healthy_client(t.port) as h:
        for _ in range(k):
            s = connect_raw(t.port, timeout=60)
            socks.append(s)
        threads = [threading.Thread(target=s.sendall, args=(bomb,)) for s in socks]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        peak = settled_peak(t.pid)
    close_all(socks)
    return {"ok": healthy_ok(h) and t.alive(), "outcome": f"{k} x {mib} MiB: peak RSS {peak / 1024:.0f} MiB"
            f" (from {base / 1024:.0f})", "peak_kib": peak, "input_kib": len(bomb) * k // 1024, "healthy": h}


STALLED_WRITER_CODE = r"""
import sys, threading, time
import rpyc
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
import os
blob = os.urandom(1 << 20)  # incompressible: each reply is a full MiB
def attack():
    c = rpyc.connect(host, port)
    echo = c.root.echo
    for _ in range(64):  # replies we never read: fills both socket buffers
        rpyc.async_(echo)(blob)
    time.sleep(3600)
for _ in range(n):
    threading.Thread(target=attack, daemon=True).start()
print("READY", flush=True)
sys.stdin.read()
"""


def case_stalled_writers(t: Target, scale: str) -> Dict:
    """Item 7: peers that send requests and never read the replies."""
    n = size("stalled_writers", scale)
    extra = ["--write-timeout", "2"] if t.kind.startswith("rs-") else None
    t2 = Target(t.kind, ARGS_BIN, extra) if t.kind.startswith("rs-") else t
    atk = subprocess.Popen([sys.executable, "-c", STALLED_WRITER_CODE, HOST, str(t2.port), str(n)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        atk.stdout.readline()
        time.sleep(3.0)
        with healthy_client(t2.port) as h:
            time.sleep(5.0)
    finally:
        atk.kill()
        atk.wait()
        if t2 is not t:
            t2.stop()
    ok = healthy_ok(h)
    return {"ok": ok, "outcome": f"{n} non-readers: healthy {h.get('calls')} calls, {h.get('errors')} errors, "
            f"worst {h.get('worst_s')} s", "healthy": h}


def case_idle_memory(t: Target, scale: str) -> Dict:
    """Item 8: RSS per idle connection (each made one call), and after close."""
    import rpyc

    n = size("idle_mem_conns", scale)
    warm = [rpyc.connect(HOST, t.port) for _ in range(20)]
    for c in warm:
        c.root.echo(1)
    for c in warm:
        c.close()
    time.sleep(1.5)
    before = rss_kib(t.pid)
    conns = []
    for _ in range(n):
        c = rpyc.connect(HOST, t.port)
        c.root.echo(1)
        conns.append(c)
    time.sleep(3.0)  # threaded rs servers park idle connections after 2 s
    during = rss_kib(t.pid)
    for c in conns:
        c.close()
    time.sleep(2.5)  # the watcher gives memory back within a second
    after = rss_kib(t.pid)
    per = (during - before) / n
    return {"ok": t.alive(), "outcome": f"{per:.1f} KiB per idle connection; {after / 1024:.1f} MiB after close "
            f"(was {before / 1024:.1f})", "per_conn_kib": round(per, 1), "before_kib": before,
            "after_close_kib": after}


def case_connect_burst(t: Target, scale: str) -> Dict:
    """Item 9: back-to-back connects (connect, then close)."""
    n = size("connects", scale)
    socks = []
    t0 = time.monotonic()
    for _ in range(n):
        socks.append(connect_raw(t.port, timeout=30))
    took = time.monotonic() - t0
    close_all(socks)
    return {"ok": took < 5, "outcome": f"{n} connects in {took:.2f} s", "seconds": round(took, 3)}


SAFE = ["__doc__", "__repr__", "__str__", "__hash__", "__eq__", "__format__", "__new__"]


def case_safe_attrs(t: Target, scale: str) -> Dict:
    """Item 10: rpyc's safe dunders on a served object, by GETATTR."""
    import rpyc
    from rpyc.core import consts
    from rpyc.core.netref import syncreq

    c = rpyc.connect(HOST, t.port)
    echo = c.root.echo
    missing = []
    for name in SAFE:
        try:
            syncreq(echo, consts.HANDLE_GETATTR, name)
        except Exception:
            missing.append(name)
    doc = echo.__doc__
    c.close()
    return {"ok": not missing, "outcome": "all reachable" if not missing else f"missing {missing}", "doc": doc}


SOAK_CODE = r"""
import json, sys, time
import rpyc
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = rpyc.connect(host, port)
r = c.root
end = time.monotonic() + secs
n = bad = 0
ctr = None
while time.monotonic() < end:
    k = n % 5
    if k == 0: bad += r.echo((n, "s", b"b", 1.5)) != (n, "s", b"b", 1.5)
    elif k == 1: bad += r.add(n, 2) != n + 2
    elif k == 2:
        ctr = r.counter(n); ctr.increment(); bad += ctr.value != n + 1
    elif k == 3: bad += r.echo("x" * 5000) != "x" * 5000
    else: bad += r.add("a", "b") != "ab"
    n += 1
del r, ctr
import gc; gc.collect(); time.sleep(0.2); c.poll_all(0.2)
print(json.dumps({"calls": n, "bad": bad, "local_objects": len(c._local_objects._dict), "proxies": len(c._proxy_cache) - (getattr(c, "_remote_root", None) is not None)}))
c.close()
"""


def case_soak(t: Target, scale: str) -> Dict:
    """The soak: 4 clients x N s of mixed calls; RSS and tables flat."""
    secs = size("soak_seconds", scale)
    rss0 = rss_kib(t.pid)
    procs = [subprocess.Popen([sys.executable, "-c", SOAK_CODE, HOST, str(t.port), str(secs)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    mid = None
    time.sleep(secs / 2)
    mid = rss_kib(t.pid)
    reports = []
    for p in procs:
        out, err = p.communicate(timeout=secs + 60)
        try:
            reports.append(json.loads(out.strip().splitlines()[-1]))
        except Exception:
            reports.append({"error": err[-300:]})
    end = rss_kib(t.pid)
    calls = sum(r.get("calls", 0) for r in reports)
    bad = sum(r.get("bad", 1) for r in reports)
    tables = sum(r.get("local_objects", 1) + r.get("proxies", 1) for r in reports)
    # Flat: the second half grows by less than a tenth of the first.
    flat = end - mid <= max(2048, (mid - rss0) // 10 + 1024)
    return {"ok": bad == 0 and tables == 0 and flat, "outcome": f"{calls} calls, {bad} wrong; RSS {rss0 // 1024} -> "
            f"{mid // 1024} -> {end // 1024} MiB; client tables {tables}", "rss_kib": [rss0, mid, end]}


CASES: Dict[str, Callable[[Target, str], Dict]] = {
    "sigterm_grace": case_sigterm_grace,
    "idle_connections": case_idle_connections,
    "refused_past_cap": case_refused_past_cap,
    "counter_wrap": case_counter_wrap,
    "big_header_stall": case_big_header_stall,
    "big_ints": case_big_ints,
    "zlib_bombs": case_zlib_bombs,
    "stalled_writers": case_stalled_writers,
    "idle_memory": case_idle_memory,
    "connect_burst": case_connect_burst,
    "safe_attrs": case_safe_attrs,
    "soak": case_soak,
}

TARGETS = ["rs-threaded", "rs-pool", "installed", "stock"]
ARGS_BIN: Optional[str] = None


def run_case(kind: str, case: str, scale: str) -> Dict:
    """Runs one case against a fresh server (peaks and CPU are per case)."""
    t = Target(kind, ARGS_BIN)
    try:
        res = CASES[case](t, scale)
        res["alive"] = t.alive() or case == "sigterm_grace"
        res["ok"] = bool(res["ok"] and res["alive"])
    except Exception as e:
        res = {"ok": False, "outcome": f"suite error: {type(e).__name__}: {e}"}
    finally:
        t.stop()
    return res


def main(argv=None) -> int:
    global ARGS_BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the rpyc-rs binary")
    ap.add_argument("--targets", default=",".join(TARGETS))
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--scale", choices=["quick", "full"], default="quick")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    ARGS_BIN = args.bin
    raise_fd_limit()
    results = {}
    for case in args.cases.split(","):
        for kind in args.targets.split(","):
            t0 = time.monotonic()
            r = run_case(kind, case, args.scale)
            r["seconds"] = round(time.monotonic() - t0, 1)
            results.setdefault(case, {})[kind] = r
            mark = "ok " if r["ok"] else "BAD"
            print(f"{mark} {case:18} {kind:12} {r['outcome']}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
