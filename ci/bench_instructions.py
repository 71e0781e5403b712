"""ci/bench's ``instructions`` section: user-space instructions per operation
of the Python backend, counted by callgrind, for the scenarios of
``ci/bench_calls.py``'s issue 10 table.

    .venv/bin/python ci/bench_instructions.py [--ops N]

Wall-clock medians on a shared VM move 10-50% with the VM's state and its
neighbours; instruction counts do not, so a change to the engine can be
judged on its own (session 7 did all its work this way). Each scenario runs
``ci/bench_peers``' server and client (``rpyc_rs.install()`` at both ends)
under ``valgrind --tool=callgrind``, warms up, zeroes both counters
(``callgrind_control -z``), runs N operations, dumps the counters
(``callgrind_control -d``) and divides. Kernel time (the round trip's
system calls and context switches) is not in these counts: they measure
what our code and CPython do per operation, at both ends together.

Writes ``bench-results/instructions.md``. Without valgrind it says so and
exits 0 (the other sections do not need it).
"""

import argparse
import glob
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VPY = ROOT / ".venv" / "bin" / "python"
OUT = ROOT / "bench-results" / "instructions.md"
#: (scenario, label, operations per counted op): an iteration op is one
#: pass over a 100-item list, counted per item, and run 50 times fewer.
SCENARIOS = [
    ("trivial", "held call `f(1)`", 1),
    ("root", "`conn.root.echo(1)`", 1),
    ("attr", "`c.value`", 1),
    ("newobj", "`conn.root.counter(3).increment()`", 1),
    ("callback", "`conn.root.call_back(double, 21)`", 1),
    ("iter", "iteration, per item (100-item passes)", 100),
]
#: Every wait here ends: valgrind makes Python start in seconds, not minutes.
LINE_TIMEOUT = 120.0


def read_line(proc, what):
    """The next line from ``proc``'s stdout, or an error after LINE_TIMEOUT."""
    ready, _, _ = select.select([proc.stdout], [], [], LINE_TIMEOUT)
    line = proc.stdout.readline() if ready else ""
    if not line:
        raise RuntimeError(f"no answer from the {what} within {LINE_TIMEOUT:.0f} s")
    return line


def summary(out_dir, side, pid):
    """The ``summary:`` count of the dump callgrind wrote for ``pid``."""
    for path in glob.glob(os.path.join(out_dir, f"{side}.{pid}.1")):
        with open(path) as f:
            for line in f:
                if line.startswith("summary:"):
                    return int(line.split()[1])
    raise RuntimeError(f"no callgrind dump for the {side} ({pid})")


#: Under valgrind every reply is slow, so a client polling for it would
#: count its polls as work; the counts are of the code, so polling is off.
ENV = dict(os.environ, RPYC_RS_REPLY_SPIN_US="0")


def count(scenario, ops, out_dir):
    """(client, server) instructions over ``ops`` operations of ``scenario``."""
    grind = ["valgrind", "--tool=callgrind", "--dump-instr=no", "--compress-strings=no"]
    server = subprocess.Popen(
        grind + [f"--callgrind-out-file={out_dir}/srv.%p", str(VPY), "ci/bench_peers/server.py", "--backend", "rpyc_rs"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV,
    )
    client = None
    try:
        addr = read_line(server, "server").split()[2]
        client = subprocess.Popen(
            grind + [f"--callgrind-out-file={out_dir}/cli.%p", str(VPY), "ci/bench_peers/client.py",
                     "--backend", "rpyc_rs", "--iter-items", "100", addr],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV,
        )
        read_line(client, "client")  # {"ready": true, ...}

        def run(n):
            client.stdin.write(f"run {scenario} {n}\n")
            client.stdin.flush()
            answer = read_line(client, "client")
            if '"ok": true' not in answer:
                raise RuntimeError(f"{scenario}: {answer.strip()}")

        run(max(ops // 5, 20))
        for pid in (server.pid, client.pid):
            subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True, timeout=60)
        run(ops)
        for pid in (server.pid, client.pid):
            subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True, timeout=60)
        return summary(out_dir, "cli", client.pid), summary(out_dir, "srv", server.pid)
    finally:
        for proc in (client, server):
            if proc is None:
                continue
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--ops", type=int, default=200 if quick else 1000, help="operations counted per scenario")
    args = parser.parse_args()
    OUT.parent.mkdir(exist_ok=True)
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    if missing:
        note = f"ci/bench instructions: skipped, no {' or '.join(missing)} on PATH (install valgrind to count)."
        print(note)
        OUT.write_text(note + "\n")
        return 0
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="rpyc-rs-callgrind-") as out_dir:
        for scenario, label, items in SCENARIOS:
            ops = args.ops if items == 1 else max(args.ops // 50, 4)
            cli, srv = count(scenario, ops, out_dir)
            per = ops * items
            rows.append((label, cli / per, srv / per))
            print(f"  {scenario}: client {cli / per:,.0f}, server {srv / per:,.0f} per op", file=sys.stderr)
    held = rows[0][1] + rows[0][2]
    lines = [
        "### User-space instructions per operation (callgrind), `rpyc_rs.install()` at both ends",
        "",
        "| operation | client | server | total | in held calls |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, cli, srv in rows:
        lines.append(f"| {label} | {cli:,.0f} | {srv:,.0f} | **{cli + srv:,.0f}** | {(cli + srv) / held:.2f} |")
    lines += [
        "",
        f"{args.ops} operations per scenario after a warm-up, counters zeroed and dumped around them; "
        "`ci/bench_peers`' server (rpyc's ThreadedServer) and client, each under "
        "`valgrind --tool=callgrind`. Kernel time is not counted. "
        f"Section took {time.monotonic() - started:.0f} s.",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    OUT.write_text(table)
    print(f"(written to {OUT.relative_to(ROOT)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
