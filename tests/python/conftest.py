"""Shared fixtures and helpers for the Python test suites.

What is here, for every suite to use:

- ``free_port()``: a TCP port on 127.0.0.1 that nobody listens on right now.
- ``spawn_rpyc_server(...)``: start a *stock* rpyc server in a subprocess
  (``python -c``: ``rpyc.utils.server.ThreadedServer``, port 0) and wait until
  it listens; returns a ``ServerProcess`` that knows its port and stops it.
- fixtures: ``rpyc_version`` (the installed ``rpyc.__version__``),
  ``rpyc_server`` (a factory; every server it starts is stopped at teardown),
  ``classic_server`` (one stock classic server, ``SlaveService``, per test),
  ``unused_port``, ``ssl_dir`` (a self-signed key and certificate for
  127.0.0.1).
- a per-test time limit without plugins: ``rpyc_rs_test_timeout`` in
  pyproject.toml (seconds, default 60), ``@pytest.mark.timeout(N)`` per test,
  ``RPYC_RS_TEST_TIMEOUT=N`` in the environment (0 turns it off, e.g. for a
  debugger). See ``_time_limit`` for how, and its limits.

The helpers are plain functions so that test modules can also use them
directly: ``from conftest import free_port, spawn_rpyc_server`` works because
pytest puts this directory on ``sys.path`` (there is no ``__init__.py``).

Servers run in a separate process on purpose: the peer is then the real,
unmodified rpyc, and nothing we install into this interpreter (for instance
``rpyc_rs.install()``) can leak into it. Everything binds 127.0.0.1 or a
Unix socket, never another address.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import pytest

HOST = "127.0.0.1"

#: Seconds a subprocess server gets to start listening.
SERVER_START_TIMEOUT = 30.0


# --------------------------------------------------------------------------
# ports


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` with no listener at the moment of the call.

    Racy by nature (someone may take it before you bind it); prefer servers
    that bind port 0 and report the port, as ``spawn_rpyc_server`` does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = SERVER_START_TIMEOUT) -> None:
    """Block until something accepts TCP connections on (host, port)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from exc
            time.sleep(0.05)


# --------------------------------------------------------------------------
# stock rpyc servers in a subprocess

# Runs in the child. Parameters arrive as JSON in argv[1]; the child prints
# "PORT <port-or-path>" once it listens, then serves until its stdin closes
# (the test process holds the other end, so the server dies with it even
# if pytest is killed before teardown), or until it is terminated.
_SERVER_SCRIPT = r"""
import json, os, sys, threading

params = json.loads(sys.argv[1])

def _exit_when_parent_goes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)

threading.Thread(target=_exit_when_parent_goes, daemon=True).start()

import rpyc
import rpyc.utils.server as _servers

ns = {"rpyc": rpyc, "__name__": "__rpyc_test_server__"}
exec(params["setup"], ns)
service = eval(params["service"], ns)
server_cls = getattr(_servers, params["server_class"])
kwargs = dict(params["server_kwargs"])
if params["protocol_config"] is not None:
    kwargs["protocol_config"] = params["protocol_config"]
if params["socket_path"] is not None:
    server = server_cls(service, socket_path=params["socket_path"], **kwargs)
else:
    server = server_cls(service, hostname=params["host"], port=0, **kwargs)
# rpyc binds in __init__ but listens only in start(); _listen() (rpyc 5.x and
# 6.x) listens now, so the port is ready the moment we report it.
if hasattr(server, "_listen"):
    server._listen()
print("PORT", server.port, flush=True)
server.start()
"""


@dataclass
class ServerProcess:
    """A stock rpyc server running in a subprocess."""

    proc: subprocess.Popen
    host: str
    port: Optional[int]
    socket_path: Optional[str] = None
    _stderr: Any = field(default=None, repr=False)

    @property
    def address(self) -> Union[tuple, str]:
        return self.socket_path if self.socket_path is not None else (self.host, self.port)

    def connect(self, service: Any = None, config: Optional[dict] = None):
        """An rpyc connection to this server (``rpyc.connect``/``unix_connect``)."""
        import rpyc

        service = service if service is not None else rpyc.VoidService
        if self.socket_path is not None:
            return rpyc.unix_connect(self.socket_path, service=service, config=config or {})
        return rpyc.connect(self.host, self.port, service=service, config=config or {})

    def classic_connect(self):
        """``rpyc.classic.connect`` to this server (it must serve SlaveService/ClassicService)."""
        import rpyc

        if self.socket_path is not None:
            return rpyc.classic.unix_connect(self.socket_path)
        return rpyc.classic.connect(self.host, self.port)

    def stderr_text(self) -> str:
        """What the server wrote to stderr so far (its logs, tracebacks)."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server: close its stdin, then SIGTERM, then SIGKILL."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout)
        for f in (self.proc.stdin, self.proc.stdout, self._stderr):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()
        if self.socket_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
            # The socket's own temporary directory goes too (tests make one
            # per server; left behind, they pile up in /tmp run after run).
            with contextlib.suppress(OSError):
                os.rmdir(os.path.dirname(self.socket_path))


def spawn_rpyc_server(
    service: str = "rpyc.SlaveService",
    *,
    setup: str = "",
    server_class: str = "ThreadedServer",
    protocol_config: Optional[dict] = None,
    server_kwargs: Optional[dict] = None,
    unix: bool = False,
    env: Optional[Dict[str, str]] = None,
    python: str = sys.executable,
    timeout: float = SERVER_START_TIMEOUT,
) -> ServerProcess:
    """Start a stock rpyc server in a subprocess and wait until it listens.

    ``service`` is a Python expression for the service class, evaluated after
    ``setup`` (source code run first in the same namespace, with ``rpyc``
    imported), e.g.::

        spawn_rpyc_server("EchoService", setup='''
        class EchoService(rpyc.Service):
            def exposed_echo(self, x):
                return x
        ''')

    ``server_class`` names a class in ``rpyc.utils.server`` (ThreadedServer,
    ThreadPoolServer, OneShotServer, ...). ``protocol_config`` and
    ``server_kwargs`` must be JSON-serialisable. ``unix=True`` serves on a Unix
    socket in a fresh temporary directory instead of 127.0.0.1.

    The caller owns the result and must ``stop()`` it; the ``rpyc_server``
    fixture does that for you.
    """
    import textwrap

    socket_path = None
    if unix:
        socket_path = os.path.join(tempfile.mkdtemp(prefix="rpyc-rs-test-"), "server.sock")
    params = {
        "setup": textwrap.dedent(setup),
        "service": service,
        "server_class": server_class,
        "protocol_config": protocol_config,
        "server_kwargs": server_kwargs or {},
        "host": HOST,
        "socket_path": socket_path,
    }
    server = start_server_process([python, "-c", _SERVER_SCRIPT, json.dumps(params)], socket_path=socket_path,
                                  env=env, timeout=timeout, what="rpyc server")
    if server.socket_path is None and not _is_listening(HOST, server.port):
        # A server class without _listen(): it listens once start() runs.
        try:
            wait_for_port(HOST, server.port, timeout)
        except BaseException:
            server.stop()
            raise
    return server


def start_server_process(
    cmd: List[str],
    *,
    socket_path: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
    timeout: float = SERVER_START_TIMEOUT,
    what: str = "server",
) -> ServerProcess:
    """Starts a server program that prints ``PORT <n>`` as its first line
    once it listens (on 127.0.0.1, or on ``socket_path``), and returns it
    with its port. Its stderr is kept for the error if it fails to start."""
    child_env = dict(os.environ if env is None else env)
    child_env["PYTHONUNBUFFERED"] = "1"
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=child_env)
    server = ServerProcess(proc=proc, host=HOST, port=None, socket_path=socket_path, _stderr=stderr)
    try:
        line = _read_line(proc, timeout)
        if not line.startswith("PORT "):
            raise RuntimeError(f"unexpected first line from server: {line!r}")
        if socket_path is None:
            server.port = int(line.split()[1])
    except BaseException as exc:
        err = server.stderr_text()
        server.stop()
        raise RuntimeError(f"{what} failed to start: {exc}\n--- server stderr ---\n{err}") from exc
    return server


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """One line of the child's stdout, or an error after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no port reported within {timeout}s")
            if not sel.select(remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"server exited (code {proc.wait()}) before listening")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode().strip()


def _is_listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session")
def rpyc_version() -> str:
    """The installed rpyc's version string, e.g. ``"6.0.2"``."""
    import rpyc

    return rpyc.__version__


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def rpyc_server() -> Iterator[Callable[..., ServerProcess]]:
    """Factory fixture: ``rpyc_server(service_expr, **kw)`` calls
    ``spawn_rpyc_server`` and stops every server it started at teardown."""
    started: List[ServerProcess] = []

    def start(*args: Any, **kwargs: Any) -> ServerProcess:
        server = spawn_rpyc_server(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def classic_server(rpyc_server) -> ServerProcess:
    """A stock rpyc classic server (``SlaveService``) on 127.0.0.1, one per test."""
    return rpyc_server("rpyc.SlaveService")


# --------------------------------------------------------------------------
# per-test time limit (no plugin)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "rpyc_rs_test_timeout",
        "default per-test time limit in seconds (0: none); "
        "@pytest.mark.timeout(N) and RPYC_RS_TEST_TIMEOUT override it",
        default="60",
    )


class PerTestTimeout(BaseException):
    """Raised in the main thread when a test phase runs past its limit.

    A BaseException so that a broad ``except Exception`` in the code under
    test cannot swallow it.
    """


def _limit_for(item: pytest.Item) -> float:
    env = os.environ.get("RPYC_RS_TEST_TIMEOUT")
    if env is not None and env.strip():
        return float(env)
    marker = item.get_closest_marker("timeout")
    if marker is not None and marker.args:
        return float(marker.args[0])
    return float(item.config.getini("rpyc_rs_test_timeout") or 0)


@contextlib.contextmanager
def _time_limit(seconds: float, what: str) -> Iterator[None]:
    """SIGALRM raises PerTestTimeout in the main thread after ``seconds``.

    Python runs signal handlers between bytecodes, so a test blocked inside
    native code that never returns to the interpreter is not interrupted; for
    that case faulthandler dumps every thread's stack 30 s later (the hang
    is then visible in the log), and ci/test's `timeout` ends the run.
    """
    usable = (
        seconds > 0
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise PerTestTimeout(f"{what} took longer than {seconds:g}s (per-test time limit)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(seconds + 30, exit=False)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with _time_limit(_limit_for(item), f"setup of {item.nodeid}"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with _time_limit(_limit_for(item), item.nodeid):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item):
    with _time_limit(_limit_for(item), f"teardown of {item.nodeid}"):
        yield


@pytest.fixture(scope="session")
def ssl_dir(tmp_path_factory):
    """A folder with a self-signed ``key.pem`` and ``cert.pem`` for
    127.0.0.1 (made with the openssl command; the test is skipped without
    it)."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    d = tmp_path_factory.mktemp("ssl")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return str(d)
