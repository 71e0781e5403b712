"""A stock rpyc client exercising a Rust server's demo service as a Python
user would write it. Used by tests/server_interop.rs.

    demo_client.py PORT_OR_SOCKET [SCENARIO]

Each scenario asserts what a user of rpyc expects; the script prints
``OK <scenario>`` for each and exits non-zero (with the traceback) on the
first failure.
"""

import gc
import sys
import threading
import time

import rpyc
import rpyc.utils.factory


def connect(addr):
    cfg = {"sync_request_timeout": 30}
    if addr.isdigit():
        return rpyc.connect("127.0.0.1", int(addr), config=cfg)
    return rpyc.utils.factory.unix_connect(addr, config=cfg)


def basics(conn):
    root = conn.root
    assert root.add(1, 2) == 3
    assert root.add(a=1, b=2) == 3
    assert root.add(1, b=2.5) == 3.5
    assert root.add("ab", "cd") == "abcd"
    assert root.exposed_add(2, 3) == 5
    assert root.echo(None) is None
    for v in [0, -48, 160, 2**100, -(2**70), 1.5, float("inf"), 3j, b"x" * 70000, "héllo 🌍",
              (1, (2, "a")), frozenset([1, 2]), slice(1, None, 2), True, Ellipsis, NotImplemented]:
        assert root.echo(v) == v, v
    assert root.get_service_name() == "DEMO"
    assert "RPYC-RS-DEMO" in root.get_service_aliases()
    try:
        root.add(1)
    except TypeError as e:
        assert "missing" in str(e), str(e)
    else:
        raise AssertionError("missing argument accepted")
    try:
        root.add(1, "a")
    except TypeError as e:
        assert "unsupported operand" in str(e), str(e)
    else:
        raise AssertionError("bad operand accepted")


def objects(conn):
    root = conn.root
    c = root.counter()
    assert c.increment() == 1
    assert c.increment(by=5) == 6
    assert c.value == 6
    assert repr(c) == "Counter(6)", repr(c)
    assert str(c) == "Counter(6)"
    with c as same:
        assert same.value == 7
    assert "increment" in dir(c)
    assert c == c
    assert not (c == root.counter())
    assert isinstance(hash(c), int)
    f = c.increment
    assert f(10) == 17
    cd = root.countdown(5)
    assert len(cd) == 5
    assert cd[0] == 5 and cd[-1] == 1
    assert list(cd) == [5, 4, 3, 2, 1]
    assert [x for x in cd] == [5, 4, 3, 2, 1]
    assert sum(rpyc.buffiter(cd)) == 15
    try:
        cd[5]
    except IndexError:
        pass
    else:
        raise AssertionError("index out of range accepted")


def policy(conn):
    root = conn.root
    for name in ["_secret", "__dict__", "__class__x"]:
        try:
            getattr(root, name)
        except AttributeError:
            pass
        else:
            raise AssertionError(f"{name} was reachable")
    try:
        root.nothing_here
    except AttributeError as e:
        assert "nothing_here" in str(e)
    else:
        raise AssertionError("missing attribute found")
    try:
        root.new_attr = 1
    except AttributeError:
        pass
    else:
        raise AssertionError("setattr allowed")
    assert root.add(1, 1) == 2  # still serving


def exceptions(conn):
    root = conn.root
    for kind, cls in [("ValueError", ValueError), ("KeyError", KeyError), ("IndexError", IndexError),
                      ("TypeError", TypeError), ("ZeroDivisionError", ZeroDivisionError),
                      ("FileNotFoundError", FileNotFoundError)]:
        try:
            root.fail(kind, "boom")
        except cls as e:
            assert e.args[0] == "boom", e.args
            assert "Remote Traceback" in str(e), str(e)
            assert "rpyc-rs" in str(e)
        else:
            raise AssertionError(kind)
    try:
        root.fail("StopIteration", "x")
    except StopIteration:
        pass


def callbacks(conn):
    root = conn.root
    assert root.call_back(lambda a, b: a * b, 6, 7) == 42
    seen = []

    def depth(n):
        seen.append(n)
        if n == 0:
            return "bottom"
        return root.call_back(depth, n - 1)

    assert root.call_back(depth, 3) == "bottom"
    assert seen == [3, 2, 1, 0]
    try:
        root.call_back(lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    else:
        raise AssertionError("callback exception lost")


def refcounts(conn):
    root = conn.root
    objs = [root.counter() for _ in range(50)]
    same = [root.echo(objs[0]) for _ in range(10)]
    assert all(s is objs[0] for s in same)
    iters = [iter(root.countdown(3)) for _ in range(10)]
    del objs, same, iters
    gc.collect()
    # DELs are async requests; a round trip flushes them.
    root.echo(1)


def concurrency(conn):
    root = conn.root
    errors = []

    def worker(t):
        try:
            for i in range(200):
                assert root.add(t, i) == t + i
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def large(conn):
    root = conn.root
    blob = bytes(range(256)) * 65536  # 16 MiB, compressible
    assert root.echo(blob) == blob
    text = "x" * 5000
    assert root.echo(text) == text


def timeouts(conn):
    root = conn.root
    res = rpyc.async_(root.sleep)(0.2)
    assert not res.ready
    res.wait()
    assert res.value == 0.2
    conn._config["sync_request_timeout"] = 0.1
    try:
        root.sleep(1)
    except TimeoutError:
        pass
    else:
        raise AssertionError("no timeout")
    finally:
        conn._config["sync_request_timeout"] = 30
    time.sleep(1)
    assert root.add(2, 2) == 4


SCENARIOS = [basics, objects, policy, exceptions, callbacks, refcounts, concurrency, large, timeouts]


def main():
    addr = sys.argv[1]
    wanted = sys.argv[2:] or [s.__name__ for s in SCENARIOS]
    for s in SCENARIOS:
        if s.__name__ not in wanted:
            continue
        conn = connect(addr)
        s(conn)
        conn.close()
        print("OK", s.__name__, flush=True)


if __name__ == "__main__":
    main()
