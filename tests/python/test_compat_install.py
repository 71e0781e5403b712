"""Compatibility suite (issue 5): Install(), uninstall(), installed() and the
per-service opt-in.

rpyc programs behave the same whether ``rpyc_rs.install()`` is in effect
on either end or not: each scenario runs in the four pairings of the
``pair`` fixture (``compat.py``), and the outcome expected is the one
stock rpyc produces.
"""

from __future__ import annotations

from compat import *  # noqa: F401,F403  (the suite's imports, fixtures and helpers)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


# --------------------------------------------------------------------------
# install / uninstall / per-service opt-in


def test_install_uninstall_installed():
    from rpyc.core import netref
    from rpyc.core.service import Service
    from rpyc_rs import _native

    stock_helpers = (netref.syncreq, netref.asyncreq)
    assert rpyc_rs.installed() == "rpyc"
    assert Service._protocol is StockConnection
    try:
        rpyc_rs.install()
        assert rpyc_rs.installed() == "rpyc_rs"
        assert Service._protocol is rpyc_rs.Connection
        # The netref helpers lose their Python frames while installed.
        assert (netref.syncreq, netref.asyncreq) == (_native.syncreq, _native.asyncreq)
        rpyc_rs.install()  # twice is harmless
        assert Service._protocol is rpyc_rs.Connection
        assert (netref.syncreq, netref.asyncreq) == (_native.syncreq, _native.asyncreq)
        assert issubclass(rpyc_rs.Connection, StockConnection)
    finally:
        rpyc_rs.uninstall()
    assert rpyc_rs.installed() == "rpyc"
    assert Service._protocol is StockConnection
    assert (netref.syncreq, netref.asyncreq) == stock_helpers
    rpyc_rs.uninstall()  # twice is harmless
    assert Service._protocol is StockConnection
    assert (netref.syncreq, netref.asyncreq) == stock_helpers


@pytest.mark.parametrize("server_fast", [False, True], ids=["stock-server", "fast-server"])
@pytest.mark.parametrize("client_fast", [False, True], ids=["stock-client", "fast-client"])
def test_native_netref_helpers(server_fast, client_fast):
    """The native syncreq/asyncreq behave as rpyc's for either engine: calls,
    attributes, errors, and the DEL that __del__ sends."""
    from rpyc.core import netref

    server = spawn_server(fast=server_fast)
    rpyc_rs.install()
    try:
        assert netref.syncreq is not None
        protocol = rpyc_rs.Connection if client_fast else StockConnection

        class Client(rpyc.VoidService):
            _protocol = protocol

        conn = server.connect(service=Client)
        try:
            assert type(conn) is protocol
            root = conn.root
            assert root.echo(41) == 41
            f = root.echo
            assert f("x") == "x"
            with pytest.raises(AttributeError):
                root.no_such_attribute_here
            # Proxies made and dropped: their DELs go through asyncreq, and
            # the server's table is back where it was.
            before = root.local_objects()
            thing = root.get_thing(5)
            assert root.local_objects() == before + 1
            for _ in range(20):
                assert root.echo(1) == 1
            del f, thing
            gc.collect()
            conn.ping()
            assert root.local_objects() == before - 1
        finally:
            conn.close()
    finally:
        rpyc_rs.uninstall()
        server.stop()


def test_native_netref_methods_put_and_restored():
    """install() makes rpyc's netref methods native (BaseNetref's
    __getattribute__ and __del__, _make_method and the builtin classes'
    methods it made); uninstall() puts back the very objects it replaced."""
    from rpyc.core import netref
    from rpyc_rs import _native

    base = netref.BaseNetref
    stock = {name: base.__dict__[name] for name in ("__getattribute__", "__del__")}
    stock_make_method = netref._make_method
    list_class = netref.builtin_classes_cache["builtins.list"]
    stock_len = list_class.__dict__["__len__"]
    try:
        rpyc_rs.install()
        rpyc_rs.install()  # twice is harmless
        getattribute = base.__dict__["__getattribute__"]
        assert type(getattribute).__name__ == "method_descriptor"
        assert getattribute.__objclass__ is base and getattribute.__name__ == "__getattribute__"
        assert type(base.__dict__["__del__"]).__name__ == "method_descriptor"
        native_len = list_class.__dict__["__len__"]
        assert isinstance(native_len, _native.NetrefMethod)
        assert native_len.__name__ == "__len__" and native_len.__doc__ == stock_len.__doc__
        # Read from the class it is itself; from an instance it binds.
        assert list_class.__len__ is native_len
        made = netref._make_method("__call__", "the doc")
        assert isinstance(made, _native.NetrefMethod)
        assert (made.__name__, made.__doc__) == ("__call__", "the doc")
        assert netref._make_method(b"count", None).__name__ == "b'count'"  # str(name), as rpyc
        # The names rpyc builds differently stay rpyc's.
        for name in ("__array__", "__getslice__"):
            assert not isinstance(netref._make_method(name, None), _native.NetrefMethod)
    finally:
        rpyc_rs.uninstall()
    assert {name: base.__dict__[name] for name in stock} == stock
    assert netref._make_method is stock_make_method
    assert list_class.__dict__["__len__"] is stock_len
    # Installed again, the same descriptors go back in.
    try:
        rpyc_rs.install()
        assert base.__dict__["__getattribute__"] is getattribute
    finally:
        rpyc_rs.uninstall()


def _netref_outcomes(conn) -> list:
    """What a run of everyday netref operations gives, outcome by outcome:
    a value, or an exception's class (and message where rpyc's is fixed)."""
    root = conn.root
    out = []

    def step(label, op, message=True):
        try:
            out.append((label, "ok", op()))
        except Exception as e:  # noqa: BLE001 (the outcome is what is compared)
            out.append((label, type(e).__name__, str(e) if message else ""))

    before = root.local_objects()
    thing = root.get_thing(5)
    step("method", lambda: thing.double())
    step("attribute", lambda: thing.public)
    step("private", lambda: thing._private)
    step("missing", lambda: thing.no_such_attribute)
    step("deleted name", lambda: thing.__array_struct__)
    step("own slot", lambda: thing.____id_pack__[2] != 0)
    step("own refcount", lambda: thing.____refcount__)
    step("__class__", lambda: str(thing.__class__))
    step("__doc__", lambda: thing.__doc__)
    step("__call__ absent", lambda: thing.__call__)
    step("len", lambda: len(thing))
    step("__len__ by name", lambda: thing.__len__())
    step("__len__ through the class", lambda: type(thing).__len__(thing))
    step("eq/lt/hash", lambda: (thing == 5, thing < 7, hash(thing) == hash(5)))
    step("str/repr", lambda: (str(thing), repr(thing)))
    step("dir", lambda: "double" in dir(thing))
    step("context", lambda: [t.double() for t in [root.get_thing(2).__enter__()]])
    lst = root.get_list()
    step("list", lambda: (list(lst), lst[1], 2 in lst, len(lst)))
    step("iterate", lambda: list(root.count(4)))
    step("kwargs", lambda: root.kwargs(1, 2, b=3, a=4))
    step("kwarg named like the netref argument", lambda: root.kwargs(_self=1), message=False)
    step("kwarg named proxy", lambda: root.kwargs(proxy=1))
    step("callback", lambda: root.call(lambda *a, **k: (a, sorted(k.items())), 1, z=2))
    step("call a held method", lambda: [f(3) for f in [root.echo]])
    del thing, lst
    gc.collect()
    conn.ping()
    step("server table back", lambda: root.local_objects() == before)
    return out


@pytest.mark.parametrize("server_fast", [False, True], ids=["stock-server", "fast-server"])
@pytest.mark.parametrize("client_fast", [False, True], ids=["stock-client", "fast-client"])
def test_native_netref_methods_match_rpyc(server_fast, client_fast):
    """The same operations through the native netref methods (installed)
    and through rpyc's own (not installed) give the same outcomes, for
    either engine at either end; the proxies' DELs leave the server's
    table where it was."""
    server = spawn_server(fast=server_fast, config={"allow_public_attrs": True})
    protocol = rpyc_rs.Connection if client_fast else StockConnection

    class Client(rpyc.VoidService):
        _protocol = protocol

    def run():
        conn = server.connect(service=Client)
        try:
            assert type(conn) is protocol
            return _netref_outcomes(conn)
        finally:
            conn.close()

    try:
        stock = run()
        rpyc_rs.install()
        try:
            native = run()
        finally:
            rpyc_rs.uninstall()
    finally:
        server.stop()
    assert native == stock
    assert ("server table back", "ok", True) in native
    assert ("method", "ok", 10) in native and ("len", "ok", 3) in native
    # The client's own list, sent back by the server while the server's
    # proxy of it is released right behind the reply.
    assert ("callback", "ok", ((1,), [("z", 2)])) in native


@pytest.mark.parametrize("server_fast", [False, True], ids=["stock-server", "fast-server"])
def test_per_service_protocol(server_fast):
    class FastClient(rpyc.VoidService):
        _protocol = rpyc_rs.Connection

    class StockClient(rpyc.VoidService):
        _protocol = StockConnection

    server = spawn_server(fast=server_fast)
    try:
        assert rpyc_rs.installed() == "rpyc"
        conn = server.connect(service=FastClient)
        assert type(conn) is rpyc_rs.Connection
        assert conn.root.echo(3) == 3
        assert conn.root.call(lambda: "cb") == "cb"
        conn.close()
        # a service with its own _protocol keeps it under install()
        rpyc_rs.install()
        try:
            conn = server.connect(service=StockClient)
            assert type(conn) is StockConnection
            conn.close()
            conn = server.connect()
            assert type(conn) is rpyc_rs.Connection
            conn.close()
        finally:
            rpyc_rs.uninstall()
        conn = server.connect()
        assert type(conn) is StockConnection
        conn.close()
    finally:
        server.stop()


def test_bind_threads_is_refused():
    """rpyc's experimental bind_threads is not supported: a clear error at
    connection time, not a connection that misbehaves later."""

    class FastClient(rpyc.VoidService):
        _protocol = rpyc_rs.Connection

    server = spawn_server(fast=False)
    try:
        with pytest.raises(ValueError, match="bind_threads"):
            server.connect(service=FastClient, config={"bind_threads": True})
        conn = server.connect(service=FastClient)
        assert conn.root.echo(1) == 1
        conn.close()
    finally:
        server.stop()
