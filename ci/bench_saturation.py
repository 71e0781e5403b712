"""ci/bench's ``saturation`` section: how a *stock* rpyc server's throughput
changes with the load its clients offer, as the number of stock clients
grows and with rpyc_rs clients beside them.

    .venv/bin/python ci/bench_saturation.py [--seconds S] [--repeats N]

``ci/bench calls``' hammer compares what 8 rpyc_rs clients and 8 stock
clients get out of a stock server (issue 10 asks for at least as much;
until our clients' waits for a reply polled every time, they got less).
This section measures what a stock ``ThreadedServer`` does as it is
driven harder, and with which clients: N client processes
(``ci/bench_peers/client.py``) call ``f(1)`` on one stock server
(``ci/bench_peers/server.py``) for S seconds, every process on any CPU, as
in the hammer. Reported: aggregate calls/s, the server's CPU per call
(user + system from ``/proc``, every thread), how often per call its
threads blocked (voluntary context switches), and the clients' CPU per
call. Medians of N repeats.

Two more rows take the 8 rpyc_rs clients and make each pause after every
call for the CPU time a stock client spends per call beyond ours: once
busy on the CPU (as a stock client is), once asleep (the CPU left idle).
If the stock server's trouble were the rate of requests, both pauses would
help alike; it is not (session 9 measured it: idle CPUs around its
threads are).

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
#: The client count of the paced rows (the hammer's).
PACED = 8


def server_cpu(pid):
    """User + system seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_waits(pid):
    """Voluntary context switches of process ``pid``, summed over its
    threads: each is a thread that blocked (on its socket, or on the GIL)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            text = status.read_text()
        except OSError:  # a thread that ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def run_once(client_backend, n, seconds, pace_us=0.0, pace_mode="busy"):
    """(calls/s, server CPU µs per call, client CPU µs per call, the
    server's blocking waits per call) for ``n`` clients on a fresh stock
    server, each pausing ``pace_us`` after every call (``pace_mode``: busy
    or asleep)."""
    srv = subprocess.Popen([str(VPY), str(ROOT / "ci/bench_peers/server.py"), "--backend", "stock"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    clients = []
    try:
        addr = srv.stdout.readline().split()[2]
        for _ in range(n):
            clients.append(subprocess.Popen(
                [str(VPY), str(ROOT / "ci/bench_peers/client.py"), "--backend", client_backend,
                 "--pace-us", str(pace_us), "--pace-mode", pace_mode, addr],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1))
        for c in clients:
            ready = json.loads(c.stdout.readline())
            if not ready.get("ready"):
                raise RuntimeError(f"client did not start: {ready}")
        cpu0, waits0 = server_cpu(srv.pid), server_waits(srv.pid)
        for c in clients:
            c.stdin.write(f"time trivial {seconds}\n")
            c.stdin.flush()
        total = 0
        client_cpu = 0.0
        for c in clients:
            answer = json.loads(c.stdout.readline())
            if not answer.get("ok"):
                raise RuntimeError(f"client failed: {answer}")
            total += answer["n"]
            client_cpu += answer["cpu"]
        cpu1, waits1 = server_cpu(srv.pid), server_waits(srv.pid)
        calls = max(total, 1)
        return (total / seconds, 1e6 * (cpu1 - cpu0) / calls, 1e6 * client_cpu / calls,
                (waits1 - waits0) / calls)
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
    ap.add_argument("--repeats", type=int, default=1 if quick else 5)
    args = ap.parse_args()
    started = time.monotonic()
    # Rounds, each running every row once, so that the VM's slow and fast
    # spells fall on all rows alike rather than on a few.
    configs = [(f"{n} × {backend}", backend, n, 0.0, "busy") for backend, counts in PLAN for n in counts]
    runs = {}

    def run(config):
        label, backend, n, pace_us, pace_mode = config
        result = run_once(backend, n, args.seconds, pace_us, pace_mode)
        runs.setdefault(label, []).append(result)
        print(f"  {label}: {result[0]:,.0f} calls/s, server CPU {result[1]:.0f} µs/call, "
              f"client CPU {result[2]:.0f} µs/call, server waits {result[3]:.2f}/call", file=sys.stderr, flush=True)

    for round_no in range(args.repeats):
        for config in configs:
            run(config)
        if round_no == 0:
            # The same 8 rpyc_rs clients, each pausing after every call for
            # what a stock client spends more CPU per call than ours (from
            # this first round): once working on the CPU, as a stock client
            # does, once asleep, the CPU left idle.
            pace = max(runs[f"{PACED} × stock"][0][2] - runs[f"{PACED} × rpyc_rs"][0][2], 1.0)
            paced = [(f"{PACED} × rpyc_rs, {pace:.0f} µs {what} after each call", "rpyc_rs", PACED, pace, mode)
                     for mode, what in (("busy", "busy work"), ("sleep", "asleep"))]
            for config in paced:
                run(config)
            configs += paced
    rows = []
    for label, backend, n, _, _ in configs:
        rate, srv_cpu, cli_cpu, waits = (statistics.median(r[i] for r in runs[label]) for i in range(4))
        rows.append((label, backend, n, rate, srv_cpu, cli_cpu, waits))
    best_stock = max(rate for _, backend, _, rate, _, _, _ in rows if backend == "stock")
    lines = [
        "### A stock rpyc server under more and more load",
        "",
        "N client processes calling `f(1)` on one stock rpyc `ThreadedServer` for "
        f"{args.seconds:g} s, every process on any CPU (medians of {args.repeats} rounds, each running "
        "every row once).",
        "",
        "| clients | calls/s | vs the stock server's best | server CPU / call | server waits / call "
        "| client CPU / call |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, _, _, rate, srv_cpu, cli_cpu, waits in rows:
        lines.append(f"| {label} | {rate:,.0f} | {rate / best_stock:.2f} | {srv_cpu:.0f} µs | {waits:.2f} "
                     f"| {cli_cpu:.0f} µs |")
    lines += ["", "Server waits: voluntary context switches of the server's threads per call. "
              "One is the wait for the next request; the rest are mostly waits for the GIL.",
              "", f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
              f"section took {time.monotonic() - started:.0f} s."]
    text = "\n".join(lines) + "\n"
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(text)
    print(f"(written to {OUT.relative_to(ROOT)})")


if __name__ == "__main__":
    main()
