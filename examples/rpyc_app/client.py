"""An ordinary rpyc client workload: nothing here knows about rpyc-rs.

    python client.py PORT              # stock rpyc
    python -m rpyc_rs client.py PORT   # the same program on the Rust engine

Prints one line per part (``name  total_ms  per_op_us``) and a checksum, so
a run on either engine can be compared with the other.
"""

import sys
import time

import rpyc


def timed(name, ops, fn):
    start = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - start
    print(f"{name:<28} {elapsed * 1e3:9.1f} ms {elapsed / ops * 1e6:9.1f} us/op", flush=True)
    return result


def main():
    conn = rpyc.connect("127.0.0.1", int(sys.argv[1]))
    root = conn.root
    echo = root.echo
    n = 3000
    check = 0
    check += timed("echo(i) via a held netref", n, lambda: sum(echo(i) for i in range(n)))
    check += timed("root.add(i, 1) with GETATTR", n, lambda: sum(root.add(i, 1) for i in range(n)))
    numbers = root.numbers(10_000)
    check += timed("iterate a 10,000-item list", 10_000, lambda: sum(x for x in numbers))
    blob = bytes(range(256)) * (4 * 4096)
    check += timed("echo 4 MiB of bytes", 1, lambda: len(echo(blob)))
    check += timed("server calls back 1000x", 1000, lambda: sum(root.apply(lambda x: x * 2, list(range(1000)))))
    print("checksum", check, "engine", type(conn).__module__, flush=True)
    conn.close()


if __name__ == "__main__":
    main()
