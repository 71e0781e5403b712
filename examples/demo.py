"""The project's main job, end to end (run by ``ci/demo`` after the wire-layer
demo ``examples/demo.rs``):

1. **A Rust server, a stock Python client.** ``rpyc-rs serve`` exposes the
   demo service; unmodified ``rpyc`` code calls it, iterates an object it
   returns, passes it a callback, and catches its exception.
2. **A stock Python server, the Rust client.** A plain ``rpyc``
   ``ThreadedServer``; the ``rpyc-rs`` tool pings it and calls a method.
3. **An unmodified rpyc program, accelerated.** ``examples/rpyc_app``'s
   server and client run once on stock rpyc and once under
   ``python -m rpyc_rs`` (which calls ``rpyc_rs.install()`` first); the two
   runs' timings are printed side by side and their checksums must agree.
   Its client and server share one CPU, as in ``ci/bench``: on a small VM
   a wake-up across CPUs can cost more than a whole rpyc-rs call, and would
   then be most of what is timed. ``DEMO_PIN=off`` runs them unpinned.

Everything listens on 127.0.0.1 with ephemeral ports, and every child is
stopped at the end. Exits non-zero if any step fails.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RPYC_RS = ROOT / "target" / "release" / "rpyc-rs"
APP = ROOT / "examples" / "rpyc_app"
PY = sys.executable
TIMEOUT = 120


def banner(title):
    print(f"\n--- {title} " + "-" * max(0, 70 - len(title)), flush=True)


def pin_cpu():
    """The CPU that part 3's processes share, or None to leave them be
    (``DEMO_PIN=off``, or no ``sched_setaffinity`` on this platform)."""
    if os.environ.get("DEMO_PIN", "").lower() in ("off", "no", "0") or not hasattr(os, "sched_setaffinity"):
        return None
    return max(os.sched_getaffinity(0))


def start(cmd, ready_prefix, cwd=None, cpu=None):
    """Starts a child (on `cpu` alone, if given) and waits for its ready
    line; returns (process, line)."""
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            preexec_fn=pin)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(ready_prefix):
            return proc, line.strip()
    proc.kill()
    raise SystemExit(f"demo: {cmd[0]} did not start (no '{ready_prefix}' line)")


def stop(proc):
    try:
        proc.stdin.close()
    except OSError:
        pass
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def rust_server_python_client():
    banner("1. Rust server (rpyc-rs serve) <- stock Python rpyc client")
    import rpyc

    server, line = start([str(RPYC_RS), "serve", "--port", "0"], "listening on")
    try:
        print(line)
        port = int(line.split()[2].rsplit(":", 1)[1])
        conn = rpyc.connect("127.0.0.1", port)
        root = conn.root
        print("service name:", root.get_service_name())
        print("root.add(40, 2) =", root.add(40, 2))
        c = root.counter()
        c.increment()
        c.increment(by=10)
        print("counter:", repr(c), "value", c.value)
        print("list(root.countdown(5)) =", list(root.countdown(5)))
        print("root.call_back(lambda a, b: a * b, 6, 7) =", root.call_back(lambda a, b: a * b, 6, 7))
        try:
            root.fail("KeyError", "no such thing")
        except KeyError as e:
            print("caught KeyError from Rust:", e.args[0])
        echo = root.echo
        n = 5000
        t = time.perf_counter()
        for i in range(n):
            echo(i)
        per = (time.perf_counter() - t) / n * 1e6
        print(f"stock client -> Rust server: echo(i) {per:.1f} us per call ({n} calls)")
        conn.close()
    finally:
        stop(server)


def python_server_rust_client():
    banner("2. stock Python rpyc server <- Rust client (rpyc-rs)")
    server, line = start([PY, "server.py"], "PORT", cwd=APP)
    try:
        port = line.split()[1]
        addr = f"127.0.0.1:{port}"
        out = subprocess.run([str(RPYC_RS), "call", addr, "add", "40", "2"], capture_output=True, text=True,
                             timeout=TIMEOUT)
        print(f"rpyc-rs call {addr} add 40 2 ->", out.stdout.strip())
        if out.returncode != 0 or out.stdout.strip() != "42":
            raise SystemExit(f"demo: rust client call failed: {out.stderr}")
        out = subprocess.run([str(RPYC_RS), "ping", addr, "--count", "3000"], capture_output=True, text=True,
                             timeout=TIMEOUT)
        print(out.stdout.strip())
        if out.returncode != 0:
            raise SystemExit(f"demo: rust client ping failed: {out.stderr}")
    finally:
        stop(server)


def run_app(launcher, cpu):
    server, line = start([PY, *launcher, "server.py"], "PORT", cwd=APP, cpu=cpu)
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    try:
        port = line.split()[1]
        out = subprocess.run([PY, *launcher, "client.py", port], cwd=APP, capture_output=True, text=True,
                             timeout=TIMEOUT, preexec_fn=pin)
        if out.returncode != 0:
            raise SystemExit(f"demo: rpyc_app client failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout.splitlines()
    finally:
        stop(server)


def accelerated_app():
    banner("3. an unmodified rpyc program: stock vs python -m rpyc_rs")
    cpu = pin_cpu()
    where = "unpinned (DEMO_PIN=off)" if cpu is None else f"client and server both on CPU {cpu}"
    print(f"({where})")
    stock = run_app([], cpu)
    fast = run_app(["-m", "rpyc_rs"], cpu)
    print(f"{'part':<28} {'stock':>12} {'rpyc-rs':>12} {'speed-up':>9}")
    for s, f in zip(stock, fast):
        if s.startswith("checksum"):
            continue
        name = s[:28].strip()
        s_ms = float(s[28:].split()[0])
        f_ms = float(f[28:].split()[0])
        print(f"{name:<28} {s_ms:9.1f} ms {f_ms:9.1f} ms {s_ms / f_ms:8.1f}x")
    s_sum = stock[-1].split()[1]
    f_sum = fast[-1].split()[1]
    print(stock[-1])
    print(fast[-1])
    if s_sum != f_sum:
        raise SystemExit("demo: the two runs disagree")


def main():
    if not RPYC_RS.exists():
        raise SystemExit(f"demo: {RPYC_RS} is missing; build it with `cargo build --release --bin rpyc-rs`")
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    rust_server_python_client()
    python_server_rust_client()
    accelerated_app()
    print("\ndemo: all steps passed")


if __name__ == "__main__":
    main()
