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

The machinery (sizes, /proc figures, the servers under test, the healthy
client, raw wire helpers) is in harness.py, the cases that measure memory
and CPU in resource_cases.py; this file has the other cases, the table of
all of them (``CASES``), ``run_case`` and ``main``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, Optional

from harness import HOST, Target, close_all, connect_raw, healthy_client, healthy_ok, raise_fd_limit, size
from resource_cases import case_big_header_stall, case_big_ints, case_idle_memory, case_soak, case_zlib_bombs


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
