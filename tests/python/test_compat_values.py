"""Compatibility suite (issue 5): Values crossing in both directions, the
connection's surface, and netrefs.

rpyc programs behave the same whether ``rpyc_rs.install()`` is in effect
on either end or not: each scenario runs in the four pairings of the
``pair`` fixture (``compat.py``), and the outcome expected is the one
stock rpyc produces.
"""

from __future__ import annotations

from compat import *  # noqa: F401,F403  (the suite's imports, fixtures and helpers)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


# --------------------------------------------------------------------------
# values


BRINE_VALUES = [
    None, True, False, NotImplemented, Ellipsis,
    0, 1, -1, -48, 159, 160, -49, 255, 256, 2**31, -(2**63), 10**100, -(10**300),
    0.0, -1.5, 1e300, float("inf"), 3 + 4j, complex(0, -1),
    "", "a", "héllo wörld ✓", "x" * 300, "\x00\n",
    b"", b"a", b"ab", b"abc", b"abcd", b"abcde", b"\x00" * 255, b"\xff" * 256, bytes(range(256)) * 10,
    (), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), (1, 2, 3, 4, 5), tuple(range(300)),
    ((1, ("a", (b"b", (None,)))),), (frozenset(),),
    frozenset(), frozenset({1, "a", b"b", (2, 3)}),
    slice(1, 10, 2), slice(None, None, None), slice("a", b"b", (1,)),
]


def test_basic_calls_every_brine_type(served):
    pair, conn = served
    echo = conn.root.echo
    type_name = conn.root.type_name
    for value in BRINE_VALUES:
        got = echo(value)
        assert type(got) is type(value), value
        assert got == value
        # by value on the far side too, not a netref to ours
        assert type_name(value) == type(value).__name__
    nan = echo(float("nan"))
    assert type(nan) is float and nan != nan
    assert conn.root.add(2, 3) == 5
    assert conn.root.add("a", "b") == "ab"
    assert conn.root.add((1,), (2,)) == (1, 2)


def test_non_brinable_values_travel_by_reference(served):
    import enum

    class Colour(enum.IntEnum):
        RED = 1

    pair, conn = served
    # An IntEnum is an int subclass: not brine-able, so it goes by reference.
    assert conn.root.type_name(Colour.RED) == "netref"
    assert conn.root.type_name([1]) == "netref"
    assert conn.root.type_name(1) == "int"
    # a tuple holding a netref comes back as a tuple holding our own object
    mine = [1, 2]
    back = conn.root.echo((1, mine, "x"))
    assert type(back) is tuple and back[0] == 1 and back[1] is mine and back[2] == "x"


# --------------------------------------------------------------------------
# the connection surface


def test_connection_surface(served):
    pair, conn = served
    root = conn.root
    assert conn.root is root
    assert isinstance(root, rpyc.BaseNetref)
    assert conn.ping() is None
    conn.ping("some data", timeout=5)
    fd = conn.fileno()
    assert isinstance(fd, int) and fd >= 0
    assert fd == conn._channel.fileno()
    assert not conn.closed
    assert "conn" in repr(conn)
    assert conn._config["connid"].startswith("conn")
    conn.close()
    assert conn.closed
    conn.close()  # a second close is harmless
    assert conn.closed
    # Closed here, so not blamed on the peer (whose answer to our CLOSE
    # was what ended the socket).
    for use in (lambda: root.echo(1), conn.ping):
        with pytest.raises(EOFError, match="stream has been closed"):
            use()
    for use in (lambda: conn.serve(0.1), conn.poll, conn.fileno):
        with pytest.raises(EOFError):
            use()


def test_connection_as_context_manager(pair):
    server = pair.server()
    with pair.client_side():
        conn = server.connect()
    pair.adopt(conn)
    with conn as c:
        assert c is conn
        assert c.root.echo(5) == 5
    assert conn.closed


def test_close_tells_the_server(pair):
    server = pair.server()
    conn = pair.connect(server)
    watcher = pair.connect(server)
    assert watcher.root.disconnects() == 0
    conn.close()
    # the server's on_disconnect ran for that connection, and only that one
    wait_until(lambda: watcher.root.disconnects() == 1, what="server-side on_disconnect")
    assert watcher.root.echo("still here") == "still here"


def test_close_while_another_thread_waits(served):
    """As in rpyc 6: close() sends CLOSE behind the call in progress (the
    server serves a connection on one thread) and waits, so both finish in
    order. rpyc 5 sends CLOSE without waiting and closes at once: the call
    in progress fails with EOFError."""
    pair, conn = served
    out = []

    def worker():
        try:
            out.append(conn.root.sleep(1))
        except BaseException as e:
            out.append(e)

    t = threading.Thread(target=worker)
    t.start()
    time.sleep(0.2)
    conn.close()
    t.join(10)
    assert not t.is_alive()
    if RPYC_MAJOR >= 6:
        assert out == [1]
    else:
        assert len(out) == 1 and isinstance(out[0], EOFError)
    assert conn.closed
    with pytest.raises(EOFError):
        conn.root.echo(1)


def test_requests_by_hand(served):
    pair, conn = served
    consts = rpyc.core.consts
    assert conn.sync_request(consts.HANDLE_PING, "x") == "x"
    res = conn.async_request(consts.HANDLE_GETROOT)
    assert isinstance(res, AsyncResult) and res.value is conn.root
    assert conn.sync_request(consts.HANDLE_GETATTR, conn.root, "echo")(4) == 4
    assert conn.sync_request(consts.HANDLE_CALLATTR, conn.root, "add", (1, 2), ()) == 3
    assert "exposed_echo" in conn.sync_request(consts.HANDLE_DIR, conn.root)
    got = []
    conn._async_request(consts.HANDLE_PING, ("y",), lambda is_exc, obj: got.append((is_exc, obj)))
    wait_until(lambda: conn.poll() or got, what="async callback")
    conn.poll_all(0.1)
    assert got == [(False, "y")]


# --------------------------------------------------------------------------
# netrefs


def _describe(fn, root):
    """What ``fn(root)`` does, in a form two runs can compare: the value's
    kind and repr, or the exception's class name and first line. Memory
    addresses are blanked (they differ between processes)."""
    import re

    def norm(text):
        return re.sub(r"0x[0-9a-fA-F]+", "0x?", text)

    try:
        value = fn(root)
    except BaseException as e:  # noqa: B036 (comparing whatever is raised)
        if isinstance(e, (KeyboardInterrupt, PerTestTimeout)):
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        return ("raise", type(e).__name__, norm(first))
    if isinstance(value, rpyc.BaseNetref):
        return ("netref", type(value).__name__, norm(repr(value)))
    return ("value", type(value).__name__, norm(repr(value)))


#: Probes run against a stock-stock reference and the pairing under test;
#: the outcomes must be identical. Each is (name, fn(root)).
ORACLE_CASES = [
    ("list eq local", lambda r: r.get_list() == [1, 2, 3]),
    ("list eq remote", lambda r: r.get_list() == r.get_list()),
    ("list ne", lambda r: r.get_list() != [1]),
    ("list lt", lambda r: r.get_list() < [2]),
    ("list hash", lambda r: hash(r.get_list())),
    ("list repr", lambda r: repr(r.get_list())),
    ("list str", lambda r: str(r.get_list())),
    ("list len", lambda r: len(r.get_list())),
    ("list bool", lambda r: bool(r.get_list())),
    ("list iter", lambda r: list(r.get_list())),
    ("list index", lambda r: r.get_list()[-1]),
    ("list index error", lambda r: r.get_list()[10]),
    ("list slice", lambda r: r.get_list()[1:]),
    ("list contains", lambda r: 2 in r.get_list()),
    ("list append", lambda r: r.get_list().append(4)),
    ("list value error", lambda r: r.get_list().index("x")),
    ("list mul", lambda r: r.get_list() * 2),
    ("list add local", lambda r: r.get_list() + [4]),
    ("local add list", lambda r: [0] + r.get_list()),
    ("list reversed", lambda r: list(reversed(r.get_list()))),
    ("list sorted", lambda r: sorted(r.get_list(), reverse=True)),
    ("list class", lambda r: r.get_list().__class__),
    ("list isinstance", lambda r: isinstance(r.get_list(), list)),
    ("list not dict", lambda r: isinstance(r.get_list(), dict)),
    ("list dir", lambda r: sorted(x for x in dir(r.get_list()) if not x.startswith("_"))),
    ("list doc", lambda r: r.get_list().__doc__[:30]),
    ("list private", lambda r: r.get_list()._x),
    ("list setitem", lambda r: r.get_list().__setitem__(0, 5)),
    ("dict getitem", lambda r: r.get_dict()["a"]),
    ("dict missing", lambda r: r.get_dict()["zz"]),
    ("dict get", lambda r: r.get_dict().get("zz", 9)),
    ("dict keys", lambda r: sorted(r.get_dict().keys())),
    ("dict items", lambda r: sorted(r.get_dict().items())),
    ("dict to dict", lambda r: dict(r.get_dict())),
    ("dict eq", lambda r: r.get_dict() == {"a": 1, "b": 2}),
    ("dict pop missing", lambda r: r.get_dict().pop("zz")),
    ("thing attr", lambda r: r.get_thing().value),
    ("thing private", lambda r: r.get_thing()._private),
    ("thing missing", lambda r: r.get_thing().nonexistent),
    ("thing method", lambda r: r.get_thing(3).double()),
    ("thing eq", lambda r: r.get_thing(7) == 7),
    ("thing lt", lambda r: r.get_thing(7) < 8),
    ("thing gt", lambda r: r.get_thing(7) > 8),
    ("thing add", lambda r: r.get_thing() + 1),
    ("thing call", lambda r: r.get_thing()()),
    ("thing int", lambda r: int(r.get_thing())),
    ("thing hash", lambda r: hash(r.get_thing(5))),
    ("thing str", lambda r: str(r.get_thing())),
    ("thing format", lambda r: format(r.get_thing(), "")),
    ("thing bool", lambda r: bool(r.get_thing())),
    ("thing len", lambda r: len(r.get_thing())),
    ("thing iter", lambda r: iter(r.get_thing())),
    ("thing class name", lambda r: r.get_thing().__class__.__name__),
    ("thing type name", lambda r: type(r.get_thing()).__name__),
    ("thing setattr", lambda r: setattr(r.get_thing(), "value", 1)),
    ("thing delattr", lambda r: delattr(r.get_thing(), "value")),
    ("method doc", lambda r: r.echo.__doc__),
    ("method name", lambda r: r.echo.__name__),
    ("method repr", lambda r: repr(r.echo)),
    ("root missing", lambda r: r.nonexistent),
    ("root private", lambda r: r._conn),
    ("root setattr", lambda r: setattr(r, "x", 1)),
    ("missing argument", lambda r: r.echo()),
    ("extra kwarg", lambda r: r.echo(1, y=2)),
    ("iterator", lambda r: list(r.count(3))),
    ("iterator next", lambda r: next(r.count(0))),
    ("raise KeyError", lambda r: r.raise_builtin("KeyError")),
    ("raise ValueError", lambda r: r.raise_builtin("ValueError")),
    ("raise ZeroDivisionError", lambda r: r.raise_builtin("ZeroDivisionError")),
    ("raise StopIteration", lambda r: r.raise_builtin("StopIteration")),
    ("raise custom", lambda r: r.raise_custom()),
    ("callback raises", lambda r: r.call(lambda: {}["k"])),
    ("callback result netref", lambda r: r.call(lambda: [1])),
    ("tuple with netref", lambda r: r.echo((1, r.get_list()))),
    ("nested tuples", lambda r: r.echo(((1, (2, (3, ()))),))),
    ("int subclass", lambda r: r.type_name(True.__class__(1))),
    ("bytearray", lambda r: r.type_name(bytearray(b"x"))),
    ("set", lambda r: r.echo({1, 2})),
    ("big int", lambda r: r.add(10**50, 1)),
    ("pickle disabled", lambda r: pickle.dumps(r.get_list())),
]


def test_outcomes_match_stock(pair):
    """Every probe does the same thing under this pairing as under stock
    rpyc on both ends, in the same test run."""
    config = {"allow_public_attrs": True}
    reference_server = spawn_server(fast=False, config=config)
    try:
        reference = rpyc.connect(reference_server.host, reference_server.port)
        assert type(reference) is StockConnection
        conn = pair.connect(pair.server(config=config))
        mismatches = []
        for name, fn in ORACLE_CASES:
            want = _describe(fn, reference.root)
            got = _describe(fn, conn.root)
            if got != want:
                mismatches.append((name, want, got))
        assert mismatches == []
        reference.close()
    finally:
        reference_server.stop()


def test_netref_to_list(pair):
    conn = pair.connect(pair.server(config={"allow_public_attrs": True}))
    lst = conn.root.get_list()
    assert isinstance(lst, rpyc.BaseNetref)
    assert isinstance(lst, list)
    assert type(lst) is not list and issubclass(type(lst), rpyc.BaseNetref)
    assert lst.__class__.__name__ == "list"
    assert "append" in dir(lst)
    assert len(lst) == 3
    assert list(lst) == [1, 2, 3]
    assert [x for x in lst] == [1, 2, 3]
    assert lst[0] == 1 and lst[-1] == 3
    tail = lst[1:]
    assert isinstance(tail, rpyc.BaseNetref) and list(tail) == [2, 3]
    lst.append(4)
    lst[0] = 10
    assert 4 in lst and 1 not in lst
    assert list(lst) == [10, 2, 3, 4]
    # rpyc compares on the owner's side, where our list is a netref: a
    # remote list never equals a local one, but equals itself
    assert not (lst == [10, 2, 3, 4])
    assert lst != [1]
    assert lst == lst
    assert conn.root.get_list() == conn.root.get_list()
    with pytest.raises(TypeError):
        lst < [11]
    assert repr(lst) == "[10, 2, 3, 4]"
    assert str(lst) == "[10, 2, 3, 4]"
    assert bool(lst)
    with pytest.raises(TypeError):
        hash(lst)
    with pytest.raises(IndexError):
        lst[100]
    del lst[0]
    assert list(lst) == [2, 3, 4]
    assert sorted(lst, reverse=True) == [4, 3, 2]


def test_netref_to_dict(pair):
    conn = pair.connect(pair.server(config={"allow_public_attrs": True}))
    d = conn.root.get_dict()
    assert isinstance(d, dict)
    assert len(d) == 2
    assert d["a"] == 1
    assert "b" in d and "z" not in d
    assert sorted(d.keys()) == ["a", "b"]
    assert sorted(d.items()) == [("a", 1), ("b", 2)]
    d["c"] = 3
    assert d.get("c") == 3 and d.get("zz", 9) == 9
    with pytest.raises(KeyError):
        d["missing"]
    assert sorted(iter(d)) == ["a", "b", "c"]
    assert dict(d) == {"a": 1, "b": 2, "c": 3}
    assert not (d == {"a": 1, "b": 2, "c": 3})  # compared on the owner's side
    assert repr(d) == "{'a': 1, 'b': 2, 'c': 3}"


def test_netref_to_object(pair):
    conn = pair.connect(pair.server(config={"allow_public_attrs": True}))
    t = conn.root.get_thing(7)
    assert isinstance(t, rpyc.BaseNetref)
    assert t.__class__.__name__ == "Thing"
    assert not isinstance(t, list)
    assert t.value == 7 and t.public == "public"
    assert t.double() == 14
    assert {"value", "public", "double"} <= set(dir(t))
    assert len(t) == 3
    assert t == 7 and t != 8
    assert t < 8 and not t < 7
    assert t == conn.root.get_thing(7)
    assert hash(t) == hash(7)
    assert repr(t) == "Thing(7)"
    assert str(t) == "a thing of 7"
    assert f"{t!s}" == "a thing of 7"
    with t as entered:
        assert entered == t
    assert t.entered == 1 and t.exited is None
    with pytest.raises(ValueError):
        with t:
            raise ValueError("inside")
    # rpyc's CTXEXIT handler re-raises the netref to our exception on the
    # owner's side, which Python refuses: __exit__ sees a TypeError
    assert t.entered == 2 and t.exited == "TypeError"
    # instances get a netref class each (rpyc caches only classes), named
    # by the installed rpyc's rules (test_outcomes_match_stock compares)
    t2 = conn.root.get_thing(8)
    assert type(t2).__name__ == type(t).__name__


def test_kwargs(served):
    pair, conn = served
    assert conn.root.kwargs() == ((), ())
    assert conn.root.kwargs(1, 2, b="x", a=3) == ((1, 2), (("a", 3), ("b", "x")))
    assert conn.root.kwargs(*range(5), **{f"k{i}": i for i in range(5)}) == (
        (0, 1, 2, 3, 4), tuple((f"k{i}", i) for i in range(5)))
    # a kwarg holding something by reference
    mine = [1]
    args, kwargs = conn.root.kwargs(obj=mine)
    assert kwargs[0][0] == "obj" and kwargs[0][1] is mine
    with pytest.raises(TypeError):
        conn.root.echo(1, 2)
    with pytest.raises(TypeError):
        conn.root.echo(y=1)
