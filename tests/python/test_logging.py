"""The Rust engine's log records in Python's ``logging`` (``rpyc_rs``
hierarchy): why a connection closed is visible with
``logging.basicConfig(level=logging.DEBUG)``, and costs nothing when the
level is higher.

The programs run in subprocesses so that ``basicConfig`` and the process-wide
log level are theirs alone; the peers are stock rpyc servers, and for the bad
frame a socket that answers with garbage.
"""

import logging
import subprocess
import sys
import textwrap

import pytest

import rpyc_rs
from rpyc_rs import _logging

pytestmark = pytest.mark.interop

DYING_SERVICE = """
import os
class DyingService(rpyc.Service):
    def exposed_die(self):
        os._exit(0)
"""

# argv: the stock server's port, then whether to configure logging.
CLIENT = textwrap.dedent(
    """
    import logging, socket, struct, sys, threading
    import rpyc, rpyc_rs

    if sys.argv[2] == "debug":
        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s %(filename)s: %(message)s")
    rpyc_rs.install()

    # A peer that goes away: the server process exits inside the call.
    conn = rpyc.connect("127.0.0.1", int(sys.argv[1]))
    try:
        conn.root.die()
    except EOFError:
        pass

    # A bad frame: a listener that answers the first message with a frame
    # header announcing 4 GiB, past any frame limit.
    listener = socket.create_server(("127.0.0.1", 0))
    def garbage():
        peer, _ = listener.accept()
        peer.recv(65536)
        peer.sendall(struct.pack("!LB", 0xFFFFFFFF, 0))
        peer.recv(65536)
        peer.close()
    threading.Thread(target=garbage, daemon=True).start()
    conn = rpyc.connect(*listener.getsockname())
    try:
        conn.root
    except EOFError as e:
        print("EOFError:", e)
    """
)


def run_client(port: int, mode: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLIENT, str(port), mode], capture_output=True, text=True,
                          timeout=60)


def test_debug_logging_shows_why_connections_closed(rpyc_server):
    server = rpyc_server("DyingService", setup=DYING_SERVICE)
    r = run_client(server.port, "debug")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("DEBUG rpyc_rs.protocol.core core.rs:")]
    # One record per connection, each saying why it ended; the bad frame's
    # reason is the one the failed call raised.
    assert len(lines) == 2, r.stderr
    assert f"connection to 127.0.0.1:{server.port}:" in lines[0], r.stderr
    eof = r.stdout.strip()[len("EOFError: "):]
    assert eof and eof in lines[1], (r.stdout, r.stderr)


def test_records_below_the_level_are_not_shown(rpyc_server):
    server = rpyc_server("DyingService", setup=DYING_SERVICE)
    r = run_client(server.port, "default")
    assert r.returncode == 0, r.stderr
    assert "rpyc_rs" not in r.stderr and "connection to" not in r.stderr, r.stderr


def test_the_native_level_follows_the_most_verbose_rpyc_rs_logger():
    root = logging.getLogger("rpyc_rs")
    child = logging.getLogger("rpyc_rs.protocol.core")
    saved = (root.level, child.level)
    try:
        root.setLevel(logging.ERROR)
        child.setLevel(logging.NOTSET)
        assert _logging.most_verbose_level() == logging.ERROR
        child.setLevel(logging.DEBUG)  # one module more verbose than the rest
        assert _logging.most_verbose_level() == logging.DEBUG
        child.setLevel(5)  # Rust's trace
        assert _logging.most_verbose_level() == 5
        logging.disable(logging.CRITICAL)
        assert _logging.most_verbose_level() == logging.CRITICAL + 1
    finally:
        logging.disable(logging.NOTSET)
        root.setLevel(saved[0])
        child.setLevel(saved[1])
        _logging.sync_level()
    assert rpyc_rs.__version__
