"""ci/bench's ``saturation`` section: how a *stock* rpyc server's throughput
changes with the load its clients offer, as the number of stock clients
grows and with rpyc_rs clients beside them.

    .venv/bin/python ci/bench_saturation.py [--seconds S] [--repeats N]

``ci/bench calls``' hammer finds 8 rpyc_rs clients getting less out of a
stock server than 8 stock clients (issue 10 asks for at least as much).
This section measures whether that is something our clients do or what a
stock ``ThreadedServer`` does once it is driven harder: N client processes
(``ci/bench_peers/client.py``) call ``f(1)`` on one stock server
(``ci/bench_peers/server.py``) for S seconds, every process on any CPU, as
in the hammer. Reported: aggregate calls/s, and the server's CPU per call
(user + system from ``/proc``, every thread). Medians of N repeats.

Writes ``bench-results/saturation.md``.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VPY = ROOT / ".venv" / "bin" / "python"
OUT = ROOT / "bench-results" / "saturation.md"
#: (client backend, client counts) against the stock server.
PLAN = [("stock", [1, 2, 4, 8, 16, 24]), ("rpyc_rs", [1, 2, 4, 8])]


def server_cpu(pid):
    """User + system seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_once(client_backend, n, seconds):
    """(calls/s, server CPU µs per call) for ``n`` clients on a fresh stock server."""
    srv = subprocess.Popen([str(VPY), str(ROOT / "ci/bench_peers/server.py"), "--backend", "stock"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    clients = []
    try:
        addr = srv.stdout.readline().split()[2]
        for _ in range(n):
            clients.append(subprocess.Popen(
                [str(VPY), str(ROOT / "ci/bench_peers/client.py"), "--backend", client_backend, addr],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1))
        for c in clients:
            ready = json.loads(c.stdout.readline())
            if not ready.get("ready"):
                raise RuntimeError(f"client did not start: {ready}")
        cpu0 = server_cpu(srv.pid)
        for c in clients:
            c.stdin.write(f"time trivial {seconds}\n")
            c.stdin.flush()
        total = 0
        for c in clients:
            answer = json.loads(c.stdout.readline())
            if not answer.get("ok"):
                raise RuntimeError(f"client failed: {answer}")
            total += answer["n"]
        cpu1 = server_cpu(srv.pid)
        return total / seconds, 1e6 * (cpu1 - cpu0) / max(total, 1)
    finally:
        for c in clients:
            try:
                c.stdin.write("quit\n")
                c.stdin.flush()
                c.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                c.kill()
        srv.stdin.close()
        srv.terminate()
        try:
            srv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            srv.kill()


def main():
    quick = os.environ.get("BENCH_QUICK") == "1"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=0.5 if quick else 2.0)
    ap.add_argument("--repeats", type=int, default=1 if quick else 3)
    args = ap.parse_args()
    started = time.monotonic()
    rows = []
    for backend, counts in PLAN:
        for n in counts:
            runs = [run_once(backend, n, args.seconds) for _ in range(args.repeats)]
            rate = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            rows.append((backend, n, rate, cpu))
            print(f"  {backend} x{n}: {rate:,.0f} calls/s, server CPU {cpu:.0f} µs/call", file=sys.stderr, flush=True)
    best_stock = max(rate for backend, _, rate, _ in rows if backend == "stock")
    lines = [
        "### A stock rpyc server under more and more load",
        "",
        "N client processes calling `f(1)` on one stock rpyc `ThreadedServer` for "
        f"{args.seconds:g} s, every process on any CPU (medians of {args.repeats}).",
        "",
        "| clients | calls/s | vs the stock server's best | server CPU / call |",
        "|---|---:|---:|---:|",
    ]
    for backend, n, rate, cpu in rows:
        lines.append(f"| {n} × {backend} | {rate:,.0f} | {rate / best_stock:.2f} | {cpu:.0f} µs |")
    lines += ["", f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
              f"section took {time.monotonic() - started:.0f} s."]
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(text)
    print(f"(written to {OUT.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
