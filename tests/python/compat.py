"""Shared pieces of the compatibility suite for the rpyc-rs backend (issue
5, ``test_compat_*.py``): rpyc programs behave the same whether
``rpyc_rs.install()`` is in effect on either end or not.

Every scenario runs four ways through the parametrised ``pair`` fixture:

- ``stock-stock``: stock rpyc client and server (the reference behaviour),
- ``fast-fast``: ``rpyc_rs.install()`` on both ends,
- ``fast-stock``: rpyc-rs client against a stock server,
- ``stock-fast``: stock client against an rpyc-rs server.

Servers run in subprocesses (``peers/compat_server.py``, ``--fast`` installs
rpyc-rs there) on 127.0.0.1 port 0 or a Unix socket; the client runs in the
pytest process and toggles ``install()``/``uninstall()`` around connecting,
asserting which ``Connection`` class it got (and asking the server which one
it runs). The expected outcome of each scenario is the one stock rpyc
produces, so the ``stock-stock`` run checks the test itself.

This module holds the suite's imports, the server process, the ``pair``
fixture and small helpers; the test modules take all of it with
``from compat import *``.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import pickle
import socket
import struct
import sys
import tempfile
import threading
import time
import zlib
from typing import Iterator, List, Optional

import pytest

import rpyc
import rpyc_rs
from rpyc.core.async_ import AsyncResult
from rpyc.core.protocol import Connection as StockConnection
from rpyc.core.vinegar import GenericException

from conftest import HOST, PerTestTimeout, ServerProcess, start_server_process  # noqa: F401

PEERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers")
if PEERS not in sys.path:
    sys.path.insert(0, PEERS)

import compat_service  # noqa: E402  (needs PEERS on sys.path)

FAST_NAME = "rpyc_rs._connection.Connection"
STOCK_NAME = "rpyc.core.protocol.Connection"
RPYC_MAJOR = int(rpyc.__version__.split(".")[0])


# --------------------------------------------------------------------------
# the four pairings


def spawn_server(
    *,
    fast: bool,
    service: str = "CompatService",
    server_class: str = "ThreadedServer",
    config: Optional[dict] = None,
    unix: bool = False,
    auth: bool = False,
    ssl_dir: Optional[str] = None,
    timeout: float = 30.0,
) -> ServerProcess:
    """Starts ``peers/compat_server.py`` and waits for it to listen."""
    import json

    cmd = [sys.executable, os.path.join(PEERS, "compat_server.py"), "--service", service,
           "--server-class", server_class, "--config", json.dumps(config or {})]
    if fast:
        cmd.append("--fast")
    if auth:
        cmd.append("--auth")
    if ssl_dir:
        cmd += ["--ssl", ssl_dir]
    socket_path = None
    if unix:
        socket_path = os.path.join(tempfile.mkdtemp(prefix="rpyc-rs-compat-"), "s.sock")
        cmd += ["--unix", socket_path]
    return start_server_process(cmd, socket_path=socket_path, timeout=timeout, what="compat server")


def run_threads(worker, args, timeout: float) -> None:
    """Runs ``worker(a)`` for each ``a`` in ``args``, each in its own thread,
    and fails if any is still running ``timeout`` seconds after the start
    of its join."""
    threads = [threading.Thread(target=worker, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "threads hung"


class Pair:
    """One pairing: which side runs rpyc-rs, and the servers and connections
    a test opened (closed at teardown)."""

    def __init__(self, client_fast: bool, server_fast: bool):
        self.client_fast = client_fast
        self.server_fast = server_fast
        self.servers: List[ServerProcess] = []
        self.conns: list = []

    @property
    def client_class(self):
        return rpyc_rs.Connection if self.client_fast else StockConnection

    @property
    def server_protocol(self) -> str:
        return FAST_NAME if self.server_fast else STOCK_NAME

    def server(self, service: str = "CompatService", **kw) -> ServerProcess:
        s = spawn_server(fast=self.server_fast, service=service, **kw)
        self.servers.append(s)
        return s

    @contextlib.contextmanager
    def client_side(self) -> Iterator[None]:
        """rpyc-rs installed in this process (or not) for the block."""
        if self.client_fast:
            rpyc_rs.install()
        else:
            rpyc_rs.uninstall()
        try:
            yield
        finally:
            rpyc_rs.uninstall()

    def adopt(self, conn):
        """Checks the connection's class and keeps it for teardown."""
        assert type(conn) is self.client_class, type(conn)
        self.conns.append(conn)
        return conn

    def connect(self, server: ServerProcess, service=rpyc.VoidService, config: Optional[dict] = None,
                check_server: bool = True):
        with self.client_side():
            if server.socket_path is not None:
                conn = rpyc.utils.factory.unix_connect(server.socket_path, service=service, config=config or {})
            else:
                conn = rpyc.connect(server.host, server.port, service=service, config=config or {})
        self.adopt(conn)
        if check_server:
            assert conn.root.protocol() == self.server_protocol
        return conn

    def classic_connect(self, server: ServerProcess):
        with self.client_side():
            conn = server.classic_connect()
        self.adopt(conn)
        assert conn.eval(PROTOCOL_EXPR) == self.server_protocol
        return conn

    def teardown(self):
        for conn in reversed(self.conns):
            with contextlib.suppress(Exception):
                conn.close()
        for s in reversed(self.servers):
            s.stop()
        rpyc_rs.uninstall()


#: Evaluated on a classic server: which Connection class its rpyc creates.
PROTOCOL_EXPR = ("(lambda c: c.__module__ + '.' + c.__qualname__)"
                  "(__import__('rpyc').core.service.Service._protocol)")

PAIRINGS = [(False, False), (True, True), (True, False), (False, True)]
PAIRING_IDS = ["stock-stock", "fast-fast", "fast-stock", "stock-fast"]


@pytest.fixture(params=PAIRINGS, ids=PAIRING_IDS)
def pair(request) -> Iterator[Pair]:
    p = Pair(*request.param)
    assert rpyc_rs.installed() == "rpyc"
    try:
        yield p
    finally:
        p.teardown()


@pytest.fixture
def served(pair):
    """(pair, connection) to a default CompatService server."""
    return pair, pair.connect(pair.server())


def wait_until(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Interrupted(Exception):
    pass


@contextlib.contextmanager
def signal_after(seconds: float):
    """A SIGUSR1 to the main thread after ``seconds``, whose handler raises
    ``Interrupted``: what Ctrl-C does with KeyboardInterrupt."""
    import signal

    def handler(signum, frame):
        raise Interrupted()

    previous = signal.signal(signal.SIGUSR1, handler)
    main = threading.main_thread().ident
    timer = threading.Timer(seconds, lambda: signal.pthread_kill(main, signal.SIGUSR1))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGUSR1, previous)


def check_interruptible(conn):
    """A call waiting for its reply, and serve(None), end at a signal
    handler's exception; the connection is fine afterwards."""
    start = time.monotonic()
    with pytest.raises(Interrupted):
        with signal_after(0.3):
            conn.root.sleep(2.5)
    assert time.monotonic() - start < 1.8, "the signal handler ran only after the reply"
    # the connection is fine; the late reply is dropped when it comes
    time.sleep(2.3)
    assert conn.root.echo("after") == "after"
    conn.poll_all(0.3)  # the replies to DELs of the netrefs used above
    start = time.monotonic()
    with pytest.raises(Interrupted):
        with signal_after(0.3):
            conn.serve(None)
    assert time.monotonic() - start < 1.8
