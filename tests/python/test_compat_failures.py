"""Compatibility suite (issue 5): Failures: garbage, dead and hostile peers,
interruption.

rpyc programs behave the same whether ``rpyc_rs.install()`` is in effect
on either end or not: each scenario runs in the four pairings of the
``pair`` fixture (``compat.py``), and the outcome expected is the one
stock rpyc produces.
"""

from __future__ import annotations

from compat import *  # noqa: F401,F403  (the suite's imports, fixtures and helpers)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


# --------------------------------------------------------------------------
# failures


def test_peer_dies_mid_call(pair):
    server = pair.server()
    conn = pair.connect(server)
    start = time.monotonic()
    with pytest.raises(EOFError):
        conn.root.die()
    assert time.monotonic() - start < 5
    assert conn.closed
    server.proc.wait(5)
    assert server.proc.returncode == 3


def test_peer_dies_while_waiting_in_threads(pair):
    server = pair.server()
    conn = pair.connect(server)
    sleep = conn.root.sleep
    errors = []

    def worker():
        try:
            sleep(20)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    server.proc.kill()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert len(errors) == 3 and all(isinstance(e, EOFError) for e in errors), errors


def _frame(payload: bytes, compressed: int = 0) -> bytes:
    return struct.pack("!LB", len(payload), compressed) + payload + b"\n"


#: Frames no rpyc peer sends. Each ends the connection it arrives on.
GARBAGE_FRAMES = [
    _frame(b"\x09garbage"),                       # unknown message type
    _frame(b"\x01\xff\xff\xff"),                   # invalid brine tag
    _frame(b"\x01\x11\x20\x12\x20\x10\x21\x0f"),  # truncated brine
    _frame(b"not zlib at all", compressed=1),     # claims compression
]

#: A well-formed request whose content means nothing: handler -40 with an
#: argument box labelled -47. rpyc answers it with an exception (its
#: ``_dispatch_request`` catches the unboxing error), and so must we.
def _message(msg: int, seq: int, body) -> bytes:
    """A message payload in the installed rpyc's framing: 6.x sends a type
    byte and brine((seq, body)), 5.x brine((msg, seq, body))."""
    if RPYC_MAJOR >= 6:
        return bytes([msg]) + rpyc.core.brine.dump((seq, body))
    return rpyc.core.brine.dump((msg, seq, body))


MEANINGLESS_REQUEST = _frame(_message(1, -48, (-40, (-47, ()))))


def _read_frame(sock: socket.socket) -> bytes:
    def exactly(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("peer closed")
            buf += chunk
        return buf

    length, compressed = struct.unpack("!LB", exactly(5))
    payload = exactly(length + 1)[:-1]
    return zlib.decompress(payload) if compressed else payload


@pytest.mark.parametrize("garbage", range(len(GARBAGE_FRAMES)))
def test_hostile_client_garbage(pair, garbage):
    server = pair.server()
    good = pair.connect(server)
    assert good.root.echo(1) == 1
    hostile = socket.create_connection((server.host, server.port), timeout=5 if pair.server_fast else 0.5)
    try:
        hostile.sendall(GARBAGE_FRAMES[garbage])
        # rpyc-rs ends that one connection at once (EOF or a reset). Stock
        # rpyc's serve_all fails too, but its close() then sends CLOSE and
        # waits for a reply the garbage peer never sends (30 s).
        ended = False
        try:
            while hostile.recv(65536):
                pass
            ended = True
        except ConnectionResetError:
            ended = True
        except socket.timeout:
            pass
        if pair.server_fast:
            assert ended
    finally:
        hostile.close()
    assert server.alive()
    assert good.root.echo("unaffected") == "unaffected"
    assert pair.connect(server).root.echo("new") == "new"


def test_hostile_client_meaningless_request(pair):
    server = pair.server()
    good = pair.connect(server)
    hostile = socket.create_connection((server.host, server.port), timeout=10)
    try:
        hostile.sendall(MEANINGLESS_REQUEST)
        reply = _read_frame(hostile)
        # MSG_EXCEPTION for seq -48, a vinegar tuple after it
        assert reply.startswith(_message(3, -48, ())[:-1])
        assert b"invalid label" in reply
        # an unknown handler: rpyc's KeyError, with the handler as its arg
        hostile.sendall(_frame(_message(1, 7, (99, (1, ())))))
        reply = _read_frame(hostile)
        assert reply.startswith(_message(3, 7, ())[:-1])
        vinegar = rpyc.core.brine.load(reply[1:] if RPYC_MAJOR >= 6 else reply)[-1]
        assert vinegar[0] == ("builtins", "KeyError") and vinegar[1] == (99,)
        # that connection is still served: a PING comes back
        hostile.sendall(_frame(_message(1, 1, (rpyc.core.consts.HANDLE_PING, (1, ("z",))))))
        assert _read_frame(hostile) == _message(2, 1, (1, "z"))
    finally:
        hostile.close()
    assert good.root.echo("unaffected") == "unaffected"


def test_hostile_client_odd_but_valid_requests(pair):
    """What stock rpyc accepts and answers, every server answers alike: a
    seq past 64 bits (echoed back), bytes after the message (ignored, as
    brine.load ignores them), and DEL counts below zero or past any refcount
    (rpyc's decref takes any int)."""
    server = pair.server()
    good = pair.connect(server)
    consts = rpyc.core.consts
    hostile = socket.create_connection((server.host, server.port), timeout=10)
    try:
        ping = (consts.HANDLE_PING, (1, ("z",)))
        big = 10**39 + 7
        hostile.sendall(_frame(_message(1, big, ping)))
        assert _read_frame(hostile) == _message(2, big, (1, "z"))
        hostile.sendall(_frame(_message(1, 2, ping) + b"\x00\x00"))
        assert _read_frame(hostile) == _message(2, 2, (1, "z"))

        def request(seq, handler, boxed_args):
            hostile.sendall(_frame(_message(1, seq, (handler, boxed_args))))
            reply = _read_frame(hostile)
            if RPYC_MAJOR >= 6:
                msg, (rseq, body) = reply[0], rpyc.core.brine.load(reply[1:])
            else:
                msg, rseq, body = rpyc.core.brine.load(reply)
            assert rseq == seq
            return msg, body

        msg, root = request(3, consts.HANDLE_GETROOT, (consts.LABEL_VALUE, ()))
        assert msg == consts.MSG_REPLY and root[0] == consts.LABEL_REMOTE_REF
        home = (consts.LABEL_LOCAL_REF, root[1])

        def delete(seq, count):
            args = (consts.LABEL_TUPLE, (home, (consts.LABEL_VALUE, count)))
            return request(seq, consts.HANDLE_DEL, args)

        # held once (stored count 0): -5 adds five references, 10**30
        # removes the entry whatever its count
        assert delete(4, -5) == (consts.MSG_REPLY, (consts.LABEL_VALUE, None))
        assert delete(5, 10**30) == (consts.MSG_REPLY, (consts.LABEL_VALUE, None))
        # it is gone now: a KeyError comes back
        msg, vinegar = delete(6, 1)
        assert msg == consts.MSG_EXCEPTION and vinegar[0] == ("builtins", "KeyError")
    finally:
        hostile.close()
    assert good.root.echo("unaffected") == "unaffected"


def test_hostile_client_huge_length_claim(pair):
    server = pair.server()
    good = pair.connect(server)
    hostile = socket.create_connection((server.host, server.port), timeout=10)
    try:
        # claims 4 GiB then stops: must not be allocated up front, nor stop
        # anybody else
        hostile.sendall(struct.pack("!LB", 0xFFFFFFFF, 0) + b"x" * 1000)
        time.sleep(0.2)
        assert good.root.echo("unaffected") == "unaffected"
        assert pair.connect(server).root.echo("new") == "new"
    finally:
        hostile.close()
    assert server.alive()


def test_fast_server_answers_in_each_clients_framing():
    """rpyc 5.x and 6.x frame messages differently and cannot talk to each
    other; an rpyc-rs server answers each client in the client's framing."""
    server = spawn_server(fast=True)
    try:
        ping = (rpyc.core.consts.HANDLE_PING, (1, ("z",)))
        framings = {
            "6.x": (lambda msg, seq, body: bytes([msg]) + rpyc.core.brine.dump((seq, body))),
            "5.x": (lambda msg, seq, body: rpyc.core.brine.dump((msg, seq, body))),
        }
        for name, message in framings.items():
            with socket.create_connection((server.host, server.port), timeout=10) as sock:
                for seq in (0, 1):
                    sock.sendall(_frame(message(1, seq, ping)))
                    assert _read_frame(sock) == message(2, seq, (1, "z")), name
    finally:
        server.stop()


_HOSTILE_SERVER = r"""
import socket, sys, threading, os
def parent_watch():
    sys.stdin.buffer.read()
    os._exit(0)
threading.Thread(target=parent_watch, daemon=True).start()
reply = bytes.fromhex(sys.argv[1])
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(8)
print("PORT", lst.getsockname()[1], flush=True)
while True:
    s, _ = lst.accept()
    s.settimeout(5)
    try:
        s.recv(65536)
        s.sendall(reply)
        s.shutdown(socket.SHUT_WR)
        s.recv(65536)
    except OSError:
        pass
    s.close()
"""


@pytest.mark.parametrize("garbage", range(len(GARBAGE_FRAMES)))
def test_hostile_server_garbage(pair, garbage):
    """A peer answering garbage gets a clear error on our side, quickly, and
    other connections carry on."""
    hostile = start_server_process([sys.executable, "-c", _HOSTILE_SERVER, GARBAGE_FRAMES[garbage].hex()],
                                   what="hostile server")
    pair.servers.append(hostile)
    good = pair.connect(pair.server())
    with pair.client_side():
        conn = rpyc.connect(HOST, hostile.port, config={"sync_request_timeout": 5})
    pair.adopt(conn)
    start = time.monotonic()
    with pytest.raises(Exception) as info:
        conn.root
    assert time.monotonic() - start < 4.5, "garbage should fail fast, not time out"
    assert not isinstance(info.value, TimeoutError)
    if pair.client_fast:
        # rpyc-rs: the connection is over, and the error says why
        assert isinstance(info.value, EOFError)
        assert "invalid" in str(info.value) or "failed" in str(info.value)
        assert conn.closed
    assert good.root.echo("unaffected") == "unaffected"
