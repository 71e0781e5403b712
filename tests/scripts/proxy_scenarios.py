"""Real rpyc scenarios through `rpyc-rs proxy` (tests/proxy.rs runs this
with rpyc 5.3.1 or 6.0.2 against a server of the other version).

    python tests/scripts/proxy_scenarios.py HOST:PORT|SOCKET_PATH

Prints ``ok NAME`` per scenario and ``done`` at the end; any mismatch or
error raises (exit status 1, traceback on stderr). The server is
tests/proxy.rs's SCENARIO_SERVICE.
"""

import hashlib
import os
import sys

import rpyc
import rpyc.utils.factory


def check(name, got, want):
    assert got == want, f"{name}: got {got!r}, want {want!r}"
    print("ok", name, flush=True)


def main():
    config = {"allow_public_attrs": True, "sync_request_timeout": 120}
    if "/" in sys.argv[1]:
        conn = rpyc.utils.factory.unix_connect(sys.argv[1], config=config)
    else:
        host, port = sys.argv[1].rsplit(":", 1)
        conn = rpyc.connect(host, int(port), config=config)
    root = conn.root

    # calls
    check("call", root.add(40, 2), 42)
    check("kwargs", root.add(1, b=2), 3)
    check("values", root.echo((1, "two", b"3", 4.5, None, True, frozenset({7}))), (1, "two", b"3", 4.5, None, True, frozenset({7})))

    # netrefs: a remote list and a remote object with state
    nums = root.numbers(1000)
    check("netref len", len(nums), 1000)
    check("netref getitem", nums[999], 999)
    counter = root.make_counter()
    counter.increment()
    counter.increment(by=5)
    check("netref object", counter.value, 6)
    check("netref back to its owner", root.echo(counter).value, 6)

    # iteration: one round trip per item
    check("iteration", sum(x for x in nums), sum(range(1000)))

    # callbacks, nested both ways
    check("callback", root.call_back(lambda a, b: a * b, 6, 7), 42)

    def down(depth):
        return 0 if depth == 0 else root.call_back(down, depth - 1) + 1

    check("nested callbacks", root.call_back(down, 6), 6)
    local = [1, 2, 3]
    check("server iterates a client list", root.total(local), 6)

    # exceptions
    try:
        root.fail("KeyError", "no such key")
    except KeyError as e:
        check("builtin exception", e.args[0], "no such key")
    try:
        root.fail("ValueError", "bad value")
    except ValueError as e:
        check("second exception", e.args[0], "bad value")
    try:
        root.custom_fail()
    except Exception as e:  # rpyc makes a GenericException subclass
        check("custom exception", "custom trouble" in str(e), True)

    # async
    res = rpyc.async_(root.add)(2, 3)
    check("async", res.value, 5)

    # several MB, compressed by the channel (and a random part that is not)
    data = os.urandom(1 << 20) + b"rpyc-rs " * (512 * 1024)
    check("5 MB upload", root.digest(data), (hashlib.sha256(data).hexdigest(), len(data)))
    blob = root.blob(6 << 20)
    check("6 MB download", (len(blob), hashlib.sha256(blob).hexdigest()), (6 << 20, hashlib.sha256(bytes(range(256)) * (6 << 12)).hexdigest()))
    text = "ünïcode " * (400 * 1024)
    check("3 MB str echo", root.echo(text) == text, True)

    del nums, counter
    conn.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
