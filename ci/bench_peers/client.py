"""A Python rpyc client for ci/bench_calls.py: stock rpyc, or rpyc with
``rpyc_rs.install()`` (``--backend rpyc_rs``), driven by the benchmark's
line protocol (the same one ``examples/bench/driver.rs`` speaks).

    .venv/bin/python ci/bench_peers/client.py --backend stock|rpyc_rs HOST:PORT

After connecting it prints ``{"ready": true, ...}``; then it answers each
command on stdin with one JSON line:

- ``run SCENARIO N``: do N operations;
- ``time SCENARIO SECONDS``: do operations until SECONDS have passed;
- ``quit`` or EOF: exit.

The answer is ``{"ok": true, "scenario", "n", "wall", "cpu", "p50"}``:
wall time of the run, this process's CPU time over it (user + system from
``getrusage``, every thread included), and the median time of one
operation (seconds), or ``{"ok": false, "error": ...}``.

Scenarios, each checking its result:

- ``trivial``: ``f(1)`` with ``f = conn.root.echo`` held (one CALL);
- ``root``: ``conn.root.echo(1)`` (GETATTR, then CALL);
- ``iter``: one pass of ``for x in lst`` over a 10,000-item remote list
  (``lst = conn.root.make_list(10000)``, made once): 10,001 round trips;
- ``bytes``: ``f(payload)`` with a 16 MiB random ``bytes`` payload,
  compressed by the channel as rpyc does by default;
- ``attr``: ``c.value`` on a held netref ``c = conn.root.counter(3)`` (one
  GETATTR);
- ``newobj``: ``conn.root.counter(3).increment()``: a new remote object of
  a user class and one method call on it (GETATTR, CALL, CALLATTR, and the
  two proxies' DELs);
- ``callback``: ``conn.root.call_back(double, 21)``: the server calls the
  client's function (GETATTR, CALL, the nested CALL back, DELs).

(``--iter-items`` and ``--bytes-size`` change the two sizes, for the quick
smoke run. ``--pace-us`` and ``--pace-mode`` add a pause after every
operation, busy or asleep, for ``ci/bench saturation``.)

Works against any server whose root exposes ``echo`` (``make_list`` only
for ``iter``): ``ci/bench_peers/server.py`` or ``rpyc-rs serve``.
"""

import argparse
import json
import os
import random
import resource
import sys
import time
import traceback

#: Defaults of --iter-items and --bytes-size.
ITER_ITEMS = 10_000
BYTES_SIZE = 16 * 1024 * 1024
#: Every loop here ends by itself.
MAX_OPS = 50_000_000
MAX_SECONDS = 600.0


def cpu_self():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def paced(fn, seconds, busy):
    """``fn`` followed by a pause of ``seconds`` before the next operation
    (``--pace-us``): busy work on the CPU, as a client that does something
    with each result, or (``busy`` false) a sleep that leaves the CPU idle.
    ``ci/bench saturation`` compares the two."""
    clock = time.perf_counter

    def spin():
        fn()
        end = clock() + seconds
        while clock() < end:
            pass

    def nap():
        fn()
        time.sleep(seconds)
    return spin if busy else nap


class Target:
    def __init__(self, conn, iter_items, bytes_size, pace=0.0, pace_busy=True):
        self.conn = conn
        self.pace = pace
        self.pace_busy = pace_busy
        self.iter_items = iter_items
        self.bytes_size = bytes_size
        self.echo = conn.root.echo
        if self.echo(1) != 1:
            raise RuntimeError("echo(1) did not return 1")
        self._list = None
        self._payload = None

    def op(self, scenario):
        """The zero-argument callable for one operation of ``scenario``."""
        if scenario == "trivial":
            f = self.echo

            def trivial():
                if f(1) != 1:
                    raise RuntimeError("echo(1) did not return 1")
            return trivial
        if scenario == "root":
            conn = self.conn

            def root():
                if conn.root.echo(1) != 1:
                    raise RuntimeError("root.echo(1) did not return 1")
            return root
        if scenario == "iter":
            if self._list is None:
                self._list = self.conn.root.make_list(self.iter_items)
            lst, want = self._list, self.iter_items

            def iterate():
                n = 0
                for _ in lst:
                    n += 1
                if n != want:
                    raise RuntimeError(f"iterated {n} items, expected {want}")
            return iterate
        if scenario == "bytes":
            if self._payload is None:
                # Random, so zlib gains nothing (and the test is not
                # of how well a run of one byte compresses); seeded, so
                # every run sends the same bytes.
                payload = random.Random(5).randbytes(self.bytes_size)
                back = self.echo(payload)
                if back != payload:
                    raise RuntimeError(f"{len(payload):,}-byte echo came back different")
                self._payload = payload
            payload, f, size = self._payload, self.echo, self.bytes_size

            def echo_bytes():
                if len(f(payload)) != size:
                    raise RuntimeError(f"{size:,}-byte echo came back with another length")
            return echo_bytes
        if scenario == "attr":
            counter = self.conn.root.counter(3)

            def attr():
                if counter.value != 3:
                    raise RuntimeError("counter.value is not 3")
            return attr
        if scenario == "newobj":
            root = self.conn.root

            def newobj():
                if root.counter(3).increment() != 4:
                    raise RuntimeError("counter(3).increment() did not return 4")
            return newobj
        if scenario == "callback":
            root = self.conn.root

            def double(x):
                return x * 2

            def callback():
                if root.call_back(double, 21) != 42:
                    raise RuntimeError("call_back(double, 21) did not return 42")
            return callback
        raise ValueError(f"unknown scenario {scenario!r} (have trivial, root, iter, bytes, attr, newobj, callback)")

    def measure(self, scenario, count=None, seconds=None):
        fn = self.op(scenario)
        if self.pace > 0:
            fn = paced(fn, self.pace, self.pace_busy)
        times = []
        rec = times.append
        clock = time.perf_counter
        cpu0 = cpu_self()
        t0 = clock()
        n = 0
        while True:
            if count is not None:
                if n >= count:
                    break
            elif clock() - t0 >= seconds or n >= MAX_OPS:
                break
            t = clock()
            fn()
            rec(clock() - t)
            n += 1
        wall = clock() - t0
        cpu = cpu_self() - cpu0
        times.sort()
        return {"ok": True, "scenario": scenario, "n": n, "wall": wall, "cpu": cpu,
                "p50": times[len(times) // 2] if times else 0.0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("stock", "rpyc_rs"), required=True)
    ap.add_argument("addr", help="HOST:PORT")
    ap.add_argument("--iter-items", type=int, default=ITER_ITEMS, help="list length for `iter`")
    ap.add_argument("--bytes-size", type=int, default=BYTES_SIZE, help="payload bytes for `bytes`")
    ap.add_argument("--pace-us", type=float, default=0.0,
                    help="a pause after each operation, in µs (ci/bench saturation's paced rows)")
    ap.add_argument("--pace-mode", choices=("busy", "sleep"), default="busy",
                    help="spend the pause working on the CPU (default) or asleep")
    args = ap.parse_args()
    try:
        if args.backend == "rpyc_rs":
            import rpyc_rs

            rpyc_rs.install()
        import rpyc

        host, port = args.addr.rsplit(":", 1)
        conn = rpyc.connect(host, int(port), config={"sync_request_timeout": 120})
        target = Target(conn, args.iter_items, args.bytes_size, args.pace_us / 1e6,
                        args.pace_mode == "busy")
    except Exception as e:  # reported to the orchestrator, which goes on
        rpyc_mod = sys.modules.get("rpyc")
        say({"ok": False, "error": f"setup: {type(e).__name__}: {e}",
             "rpyc": getattr(rpyc_mod, "__version__", None)})
        traceback.print_exc()
        return 1
    say({"ready": True, "driver": f"python rpyc ({args.backend})", "pid": os.getpid(), "rpyc": rpyc.__version__,
         "protocol": type(conn).__module__ + "." + type(conn).__name__})
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words == ["quit"]:
            break
        try:
            if len(words) == 3 and words[0] == "run":
                res = target.measure(words[1], count=max(1, min(int(words[2]), MAX_OPS)))
            elif len(words) == 3 and words[0] == "time":
                res = target.measure(words[1], seconds=min(float(words[2]), MAX_SECONDS))
            else:
                res = {"ok": False, "error": f"unknown command {line.strip()!r}"}
        except Exception as e:
            traceback.print_exc()
            res = {"ok": False, "error": f"{words[1] if len(words) > 1 else '?'}: {type(e).__name__}: {e}"}
        say(res)
    try:
        conn.close()
    except Exception:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
