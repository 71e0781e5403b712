"""The hostile-load suite's cases that measure what an attack costs the
server (tests/hostile/suite.py has the others, the table of all cases and
the runner): connections that claim a 1 GiB frame and stall (RSS), a frame
of 100,000-digit ints (CPU), parallel zlib bombs (peak RSS), the RSS of
idle connections, and the soak (RSS and tables flat over mixed calls).

Each case takes a ``Target`` and the scale and returns the result dict
suite.py's module doc describes; suite.py's ``CASES`` hands them on.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import threading
import time
import zlib
from typing import Dict

from harness import (
    HOST,
    Target,
    close_all,
    connect_raw,
    cpu_seconds,
    frame,
    healthy_client,
    healthy_ok,
    peak_kib,
    request_payload,
    rss_kib,
    settled_peak,
    size,
)


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
