"""Compatibility suite (issue 5): Classic, rpyc's server classes and
authenticators, pipes, and config keys.

rpyc programs behave the same whether ``rpyc_rs.install()`` is in effect
on either end or not: each scenario runs in the four pairings of the
``pair`` fixture (``compat.py``), and the outcome expected is the one
stock rpyc produces.
"""

from __future__ import annotations

from compat import *  # noqa: F401,F403  (the suite's imports, fixtures and helpers)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


# --------------------------------------------------------------------------
# classic


def test_classic(pair, tmp_path, capsys):
    server = pair.server("classic")
    conn = pair.classic_connect(server)
    assert conn.modules.os.getpid() == server.proc.pid
    assert conn.modules["sys"].version_info[:2] == tuple(sys.version_info[:2])
    assert conn.eval("1 + 2") == 3
    conn.execute("x = [1, 2, 3]")
    assert list(conn.namespace["x"]) == [1, 2, 3]
    assert conn.eval("len(x)") == 3

    def square_sum(n):
        return sum(i * i for i in range(n))

    remote = rpyc.classic.teleport_function(conn, square_sum)
    assert remote(10) == square_sum(10)
    assert isinstance(remote, rpyc.BaseNetref)

    path = conn.modules.sys.path
    local_path = rpyc.classic.obtain(path)
    assert type(local_path) is list and local_path == list(path)
    remote_list = rpyc.classic.deliver(conn, [1, {"a": (2, 3)}])
    assert isinstance(remote_list, rpyc.BaseNetref)
    assert conn.modules.builtins.id(remote_list) != id(remote_list)
    assert remote_list[1]["a"] == (2, 3)

    src = tmp_path / "up.bin"
    data = os.urandom(200_000)
    src.write_bytes(data)
    remote_dir = conn.modules.tempfile.mkdtemp()
    remote_path = conn.modules.os.path.join(remote_dir, "up.bin")
    rpyc.classic.upload(conn, str(src), remote_path)
    assert conn.modules.os.path.getsize(remote_path) == len(data)
    back = tmp_path / "down.bin"
    rpyc.classic.download(conn, remote_path, str(back))
    assert back.read_bytes() == data
    conn.modules.shutil.rmtree(remote_dir)

    with rpyc.classic.redirected_stdio(conn):
        conn.execute("print('hello from the server')")
    assert "hello from the server" in capsys.readouterr().out
    conn.execute("print('not redirected')")
    assert "not redirected" not in capsys.readouterr().out

    with pytest.raises(NameError):
        conn.eval("undefined_name")
    assert conn.modules.math.sqrt(16) == 4.0


# --------------------------------------------------------------------------
# server classes and authenticators


def _auth_connect(pair: Pair, server: ServerProcess, token: bytes):
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(token)
    sock.settimeout(None)
    with pair.client_side():
        conn = rpyc.utils.factory.connect_stream(rpyc.SocketStream(sock))
    return pair.adopt(conn)


@pytest.mark.parametrize("server_class", ["ThreadedServer", "ThreadPoolServer", "ForkingServer"])
def test_server_classes_with_authenticator(pair, server_class):
    server = pair.server("CredentialsService", server_class=server_class, auth=True)
    conns = [_auth_connect(pair, server, b"RSRS") for _ in range(3)]
    for c in conns:
        assert c.root.protocol() == pair.server_protocol
        assert c.root.credentials() == "friend"
    pids = {c.root.pid() for c in conns}
    if server_class == "ForkingServer":
        assert len(pids) == 3 and server.proc.pid not in pids
    else:
        assert pids == {server.proc.pid}

    # concurrent use of several connections
    errors = []

    # ThreadPoolServer notices a connection that went idle only on its
    # poller's next 0.1 s round, so each call there costs up to 0.1 s
    calls = 10 if server_class == "ThreadPoolServer" else 100

    def worker(c):
        try:
            for _ in range(calls):
                assert c.root.credentials() == "friend"
        except BaseException as e:
            errors.append(e)

    run_threads(worker, conns, 30)
    assert errors == []

    # a client with the wrong token is turned away; the others carry on
    bad = _auth_connect(pair, server, b"nope")
    with pytest.raises(EOFError):
        bad.root.credentials()
    for c in conns:
        assert c.root.credentials() == "friend"


def test_oneshot_server(pair):
    server = pair.server(server_class="OneShotServer")
    conn = pair.connect(server)
    assert conn.root.echo("once") == "once"
    conn.close()
    server.proc.wait(10)
    assert server.proc.returncode == 0


def test_unix_socket(pair):
    server = pair.server(unix=True)
    conn = pair.connect(server)
    assert conn._channel.stream.sock.family == socket.AF_UNIX
    assert conn.root.echo(b"unix") == b"unix"
    assert conn.root.call(lambda x: x * 2, 21) == 42
    blob = os.urandom(300_000)
    assert conn.root.echo(blob) == blob


def test_ssl(pair, ssl_dir):
    """SSL sockets are not handed to the engine: they go through rpyc's
    Python stream, on both ends."""
    import ssl

    server = pair.server(ssl_dir=ssl_dir)
    with pair.client_side():
        conn = rpyc.ssl_connect(server.host, server.port, ca_certs=os.path.join(ssl_dir, "cert.pem"),
                                config={"sync_request_timeout": None})
    pair.adopt(conn)
    assert isinstance(conn._channel.stream.sock, ssl.SSLSocket)
    assert conn.root.protocol() == pair.server_protocol
    assert conn.root.echo("secret") == "secret"
    assert conn.root.call(lambda x: x + 1, 1) == 2
    blob = os.urandom(300_000)
    assert conn.root.echo(blob) == blob
    res = [rpyc.async_(conn.root.echo)(i) for i in range(20)]
    assert [r.value for r in res] == list(range(20))
    with pytest.raises(KeyError):
        conn.root.raise_builtin("KeyError")
    check_interruptible(conn)
    conn.close()
    assert conn.closed


def _in_process_services(pair):
    """Client and server services for connect_thread, each opting in to
    rpyc-rs (or not) through its own ``_protocol``."""
    client_proto = rpyc_rs.Connection if pair.client_fast else StockConnection
    server_proto = rpyc_rs.Connection if pair.server_fast else StockConnection
    client = type("ClientService", (rpyc.VoidService,), {"_protocol": client_proto})
    server = type("ServerService", (compat_service.CompatService,), {"_protocol": server_proto})
    return client, server


def test_connect_thread_per_service_protocol(pair):
    """Both ends in this process (rpyc.utils.factory.connect_thread), each
    end's engine chosen per service by ``_protocol``, without install()."""
    client, server = _in_process_services(pair)
    conn = pair.adopt(rpyc.utils.factory.connect_thread(service=client, remote_service=server))
    assert rpyc_rs.installed() == "rpyc"
    assert conn.root.protocol() == pair.server_protocol
    assert conn.root.echo((1, "two", b"3")) == (1, "two", b"3")
    pingpong = conn.root.pingpong

    def callback(depth):
        return ["client"] + list(pingpong(callback, depth - 1))

    assert list(pingpong(callback, 6)) == ["server", "client"] * 3 + ["server"]
    lst = conn.root.get_list()
    assert len(lst) == 3
    with pytest.raises(KeyError):
        conn.root.raise_builtin("KeyError")
    conn.close()


# --------------------------------------------------------------------------
# pipes (the Python-channel path)

_STDPIPES_SERVER = r"""
import sys
import rpyc
if sys.argv[1] == "fast":
    import rpyc_rs
    rpyc_rs.install()
conn = rpyc.classic.connect_stdpipes()
conn.serve_all()
"""


def test_connect_subproc_and_stdpipes(pair):
    flavour = "fast" if pair.server_fast else "stock"
    with pair.client_side():
        conn = rpyc.connect_subproc([sys.executable, "-c", _STDPIPES_SERVER, flavour], service=rpyc.SlaveService)
    pair.adopt(conn)
    try:
        root = conn.root
        assert root.eval(PROTOCOL_EXPR) == pair.server_protocol
        assert root.eval("6 * 7") == 42
        root.execute("import os")
        assert root.eval("os.getpid()") == conn.proc.pid
        lst = root.eval("[1, 2, 3]")
        assert len(lst) == 3 and list(lst) == [1, 2, 3]
        # callbacks over pipes: the server calls our function
        assert root.eval("lambda f: f(20) + 1")(lambda x: x * 2) == 41
        blob = os.urandom(200_000)
        assert root.eval("lambda b: b")(blob) == blob
        with pytest.raises(ZeroDivisionError):
            root.eval("1/0")
    finally:
        conn.close()
        conn.proc.wait(10)


# --------------------------------------------------------------------------
# config keys


def test_config_logger(served):
    pair, conn0 = served
    server = pair.servers[0]
    records = []

    class Grab(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger(f"rpyc-rs-compat-{id(records)}")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Grab())
    logger.propagate = False
    conn = pair.connect(server, config={"logger": logger})

    def bad():
        raise ValueError("client side")

    with pytest.raises(ValueError):
        conn.root.call(bad)
    caught = [r for r in records if r.getMessage() == "Exception caught"]
    assert len(caught) == 1 and caught[0].levelno == logging.DEBUG
    assert caught[0].exc_info and caught[0].exc_info[0] is ValueError


def test_config_before_closed(served):
    pair, conn0 = served
    seen = []
    conn = pair.connect(pair.servers[0], config={"before_closed": lambda root: seen.append(root.echo("bye"))})
    conn.close()
    assert seen == ["bye"]


def test_config_allow_pickle(pair):
    conn = pair.connect(pair.server())
    lst = conn.root.get_list()
    with pytest.raises(ValueError, match="pickling is disabled"):
        pickle.dumps(lst)

    conn2 = pair.connect(pair.server(config={"allow_pickle": True}), config={"allow_pickle": True})
    lst = conn2.root.get_list()
    copy = pickle.loads(pickle.dumps(lst))
    assert type(copy) is list and copy == [1, 2, 3]
    assert rpyc.classic.obtain(lst) == [1, 2, 3]
    # the server pickles a netref to one of our objects: it asks us
    assert pickle.loads(conn2.root.pickled({"k": 1})) == {"k": 1}
