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
