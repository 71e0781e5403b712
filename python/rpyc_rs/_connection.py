"""``rpyc_rs.Connection``: rpyc's ``Connection`` running on the Rust engine.

It subclasses ``rpyc.core.protocol.Connection`` and keeps everything users
touch (the config dict, ``root``, rpyc's netref classes and proxy cache,
``_local_objects``, the request handlers and attribute policy, vinegar,
``close``/``closed``/``fileno``/``ping``, ``serve_all``, ``poll_all``...). The
hot path goes to :class:`rpyc_rs._native.Engine`: framing and zlib, brine,
boxing, the seq table and the serve loop, with the GIL released around
socket I/O.

Plain TCP and Unix sockets are handed to the engine, which does their I/O
itself (on a duplicate of the descriptor; ``fileno()`` is still the Python
socket's); any other stream (SSL, pipes, tunnels) keeps its Python stream
and the engine goes through the rpyc channel.

Where it deliberately differs from rpyc (``tests/python/test_compat_*.py``
checks the rest against stock rpyc, with 5.3.x and 6.0.x):

- ``bind_threads`` (``RPYC_BIND_THREADS=true``, experimental in rpyc) is not
  supported: creating a connection with it raises ``ValueError``.
- The engine boxes, unboxes, sends and dispatches itself. It calls rpyc's
  ``_HANDLERS``, ``_netref_factory``, ``_box_exc``/``_unbox_exc``,
  ``_proxy_cache`` and ``_config``, but a subclass that overrides ``_box``,
  ``_unbox``, ``_send``, ``_dispatch``, ``_dispatch_request`` or
  ``sync_request`` is not consulted (``_send`` raises
  ``NotImplementedError``). ``sync_request`` and ``async_request`` are
  instance attributes bound to the engine (unless a subclass defines its
  own ``async_request``), and ``serve_all`` loops in the engine rather than
  calling ``serve`` per message.
- ``_local_objects`` is ``rpyc_rs._native.LocalObjects``: rpyc's
  ``RefCountingColl`` (same methods and ``_dict``), native.
- When the handler for a request is rpyc's own and the class overrides
  none of ``_access_attr``, ``_check_attr``, ``_handle_getattr`` and
  ``_handle_call``, the engine serves CALL, GETATTR, SETATTR, DELATTR,
  CALLATTR, DEL and the lookups inside CMP and CTXEXIT itself, with rpyc's
  semantics (policy over the live ``_config``, ``_rpyc_*`` overrides, the
  same exceptions); a remote traceback then has no frames of rpyc's
  handlers. A subclass's own handler is called as usual.
- A dropped proxy's DEL goes out in the same write as the next frame this
  side sends (ahead of it), or before this side next blocks reading; the
  answer to the peer's DEL likewise rides with the next frame. The peer
  frees objects in the same order as with stock rpyc, only not always at
  the same moment.
- ``async_request(HANDLE_DEL, ...)`` (what a netref's ``__del__`` sends)
  returns ``None`` rather than an ``AsyncResult``: nobody waits for it.
- A message that is not well-formed (bad brine, an unknown message type, a
  bad frame) ends that connection at once, and the call that was waiting
  raises ``EOFError`` saying what was wrong (``serve_all`` returns, as for
  any end of connection). rpyc raises whichever error its decoder hits
  (``ValueError``, ``struct.error``, ``zlib.error``...) and leaves the
  connection open, or in ``serve_all`` sends CLOSE and waits up to
  ``sync_request_timeout`` for the garbage peer to answer. A well-formed
  request that means nothing (an unknown handler or box label) is answered
  with an exception, as rpyc does.
- A result that cannot be sent (say, nested too deeply) is answered with
  the error as an exception; rpyc raises it on the serving side and leaves
  the caller waiting.
- Frames larger than the engine's ``max_frame_size`` end the connection
  (rpyc has no limit); see ``rpyc_rs._native.Engine``.
- ``poll(timeout)`` (``serve`` with ``wait_for_lock=False``) while another
  thread is reading waits up to ``timeout`` for that thread's next message,
  like ``serve``, instead of returning ``False`` at once.
- rpyc 5.x and 6.x frame messages differently and cannot talk to each
  other. The engine reads both, speaks the installed rpyc's framing first
  and then the peer's: an rpyc-rs server serves 5.x and 6.x clients.
- A proxy for an instance of one of the peer's (non-builtin) classes gets
  its class from a cache keyed by the peer's class (name and id), so the
  peer is asked (INSPECT) once per class rather than once per instance. The
  methods INSPECT lists depend only on the class; a method added to that
  class on the peer after its first instance was proxied is still reached
  through ``getattr``, but not as a method of the proxy class.
- On TCP the engine sets ``TCP_NODELAY`` and acknowledges reads at once
  (``TCP_QUICKACK``), so a stock peer's Nagle algorithm cannot stall calls.
- A thread waiting for a reply on a socket the engine owns polls for it for
  up to 50 µs (yielding the CPU between polls) before it sleeps, since
  waking a sleeping thread on an idle CPU costs more than a loopback round
  trip; so does ``serve_all`` (a server's loop) for the next request after
  serving one. A wait for a reply from a peer on this host polls every
  time (at most 50 µs of CPU a call, about what rpyc's own Python costs a
  call, and it keeps a busy stock server's CPUs from idling, which that
  server needs); ``serve_all``, and a wait for a peer on another host, stop
  polling by themselves for a while where frames keep coming later.
  ``config={"rpyc_rs_reply_spin_us": N}`` or the environment's
  ``RPYC_RS_REPLY_SPIN_US`` sets the time, 0 turns it off. rpyc sleeps at
  once.
- On an SSL socket, a send that fails because the peer has already ended
  the session (it refused our certificate, say) raises ``EOFError`` with
  the peer's TLS alert ("tlsv13 alert certificate required"), read before
  the socket is closed. rpyc closes the socket first and reports "EOF
  occurred in violation of protocol" whenever the peer's close beat our
  first write, which is a matter of timing (see ``_SSLChannel``).
"""

import os
import socket
import ssl
import zlib
from threading import Condition
from typing import Any, Callable, Dict, Optional, Tuple

from rpyc.core import consts
from rpyc.core import netref as _netref
from rpyc.core import protocol as _rpyc_protocol
from rpyc.core.channel import Channel
from rpyc.core.protocol import DEFAULT_CONFIG
from rpyc.core.protocol import Connection as _RpycConnection
from rpyc.core.stream import SocketStream
from rpyc.lib import Timeout
from rpyc.version import version as _rpyc_version

from rpyc_rs._native import Engine, LocalObjects, connection_root
from rpyc_rs import _logging

__all__ = ["Connection"]

# rpyc 5.x frames a message as brine((msg, seq, body)), 6.x as a type byte
# and brine((seq, body)); neither reads the other. The engine starts in the
# installed rpyc's framing and then follows the peer's.
_LEGACY_FRAMING = int(str(_rpyc_version[0])) < 6


#: The most microseconds a waiting thread may poll for a reply (1 s).
_MAX_REPLY_SPIN_US = 1_000_000


def _reply_spin_us(config: Dict[str, Any]) -> Optional[int]:
    """How many microseconds a thread waiting for a reply (or ``serve_all``
    for the next request) polls for it before it sleeps: the config key
    ``rpyc_rs_reply_spin_us``, else the environment's
    ``RPYC_RS_REPLY_SPIN_US``, else ``None`` (the engine's default, 50). 0
    turns polling off. Anything but a whole number from 0 to 1,000,000 is a
    ValueError naming where it came from."""
    value: Any = config.get("rpyc_rs_reply_spin_us")
    where = "config['rpyc_rs_reply_spin_us']"
    if value is None:
        text = os.environ.get("RPYC_RS_REPLY_SPIN_US", "").strip()
        if not text:
            return None
        where = "RPYC_RS_REPLY_SPIN_US"
        try:
            value = int(text)
        except ValueError:
            value = text
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_REPLY_SPIN_US:
        raise ValueError(f"{where} must be a whole number of microseconds from 0 to "
                         f"{_MAX_REPLY_SPIN_US:,}, not {value!r}")
    return value


def _peer_name(sock: Any) -> str:
    """``host:port`` (or the Unix socket path) of the socket's peer, for the
    engine's messages ("... closed the connection"); ``""`` if unknown."""
    try:
        peer = sock.getpeername()
    except (OSError, AttributeError, TypeError):
        return ""
    if isinstance(peer, tuple):
        peer = f"{peer[0]}:{peer[1]}"
    return str(peer)


def _owned_socket(channel: Any) -> Tuple[Optional[int], str, bool]:
    """The fd, peer name and whether it is TCP, when the engine can own the
    channel's socket: a plain (non-SSL) TCP or Unix socket in a stock
    SocketStream behind a stock Channel. ``(None, peer, False)`` otherwise,
    with the peer's name when the stream has a socket (SSL, tunnels)."""
    sock = getattr(getattr(channel, "stream", None), "sock", None)
    if type(channel) is not Channel or type(channel.stream) is not SocketStream:
        return None, _peer_name(sock), False
    if type(sock) is not socket.socket or sock.type != socket.SOCK_STREAM:
        return None, _peer_name(sock), False
    if sock.family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        return None, _peer_name(sock), False
    peer = _peer_name(sock)
    # The engine waits with timeouts of its own; the socket must block.
    sock.setblocking(True)
    return sock.fileno(), peer, sock.family != socket.AF_UNIX


class _SSLChannel:
    """rpyc's ``Channel`` over an SSL ``SocketStream``, as the engine sees it:
    ``poll``/``recv``/``close``... are the channel's own; ``send`` frames
    exactly as ``Channel.send`` does, but when the write fails it first reads
    what the peer sent before going away, and the ``EOFError`` carries that.

    Why: a TLS 1.3 server checks the client's certificate after the client
    considers the handshake done; when it refuses, it sends an alert and
    closes. If our first request goes out before that close, the write
    succeeds and the next read raises the alert. If the close comes first,
    the write fails ("EOF occurred in violation of protocol") and rpyc's
    ``SocketStream.write`` closes the socket, losing the alert that is
    already in its receive buffer. Which comes first is a race between two
    processes (rpyc's own test_ssl.py::test_nokey loses it now and then on a
    busy machine, stock or not); reading the alert after a failed write
    makes the outcome the same every time.
    """

    __slots__ = ("_channel",)

    def __init__(self, channel: Any) -> None:
        self._channel = channel

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    def send(self, data: bytes) -> None:
        ch = self._channel
        if ch.compress and len(data) > ch.COMPRESSION_THRESHOLD:
            compressed, data = 1, zlib.compress(data, ch.COMPRESSION_LEVEL)
        else:
            compressed = 0
        buf = memoryview(ch.FRAME_HEADER.pack(len(data), compressed) + data + ch.FLUSHER)
        stream = ch.stream
        chunk = getattr(stream, "MAX_IO_CHUNK", 64000)
        try:
            while buf:
                buf = buf[stream.sock.send(buf[:chunk]):]
        except OSError as ex:  # ssl.SSLError included
            reason = _last_words(stream.sock) or ex
            stream.close()
            raise EOFError(reason) from ex


def _last_words(sock: Any) -> Optional[BaseException]:
    """The TLS alert the peer sent before closing, if one is waiting to be
    read (a failed write does not consume it); ``None`` otherwise."""
    try:
        sock.settimeout(0.2)
        sock.recv(1)
    except ssl.SSLError as e:
        if "alert" in str(e):
            return e
    except (OSError, ValueError):
        pass
    return None


def _engine_channel(channel: Any) -> Any:
    """The channel the engine should use for a stream it cannot own: an
    SSL socket stream behind a stock ``Channel`` gets :class:`_SSLChannel`."""
    stream = getattr(channel, "stream", None)
    if (type(channel) is Channel and type(stream) is SocketStream
            and isinstance(getattr(stream, "sock", None), ssl.SSLSocket)):
        return _SSLChannel(channel)
    return channel


# rpyc ships no type information, so its Connection is Any to mypy.
class Connection(_RpycConnection):  # type: ignore[misc]
    """An rpyc ``Connection`` whose protocol engine is rpyc-rs.

    Use it like rpyc's: ``rpyc_rs.install()`` makes every connection rpyc
    creates one of these, or set ``_protocol = rpyc_rs.Connection`` on a
    service class to opt in for that service alone.
    """

    #: rpyc's ``root`` property (fetch the peer's root object once), with
    #: its getter in C: ``conn.root.method(...)`` is how most calls start.
    root = property(connection_root, doc=_RpycConnection.root.__doc__)

    def __init__(self, root: Any, channel: Any, config: Dict[str, Any] = {}) -> None:  # noqa: B006 (rpyc's)
        # rpyc's __del__ calls close(), which must find a closed connection
        # if we fail below.
        self._closed = True
        if config.get("bind_threads", DEFAULT_CONFIG["bind_threads"]):
            raise ValueError("rpyc_rs.Connection does not support bind_threads; "
                             "use rpyc's own Connection for it")
        super().__init__(root, channel, config)
        # rpyc's RefCountingColl, native: same methods and _dict, and the
        # engine reaches it without a Python call.
        self._local_objects = LocalObjects()
        # Proxy classes for instances of the peer's classes, by
        # (name pack, class id): see _netref_factory.
        self._instance_netref_classes: Dict[Any, Any] = {}
        try:
            _logging.sync_level()
            fd, peer, tcp = _owned_socket(channel)
            engine_channel = channel if fd is not None else _engine_channel(channel)
            self._engine = Engine(self, engine_channel, fd, peer, compress=bool(getattr(channel, "compress", True)),
                                  tcp=tcp, legacy_framing=_LEGACY_FRAMING,
                                  reply_spin_us=_reply_spin_us(self._config))
        except BaseException:
            self._closed = True
            raise
        # The hot path: netrefs call conn.sync_request(handler, proxy, *args);
        # an instance attribute sends that straight to the engine.
        self.sync_request = self._engine.sync_request
        # And conn.async_request(HANDLE_DEL, proxy, count) from every
        # dropped netref: the method below, done by the engine, unless a
        # subclass has its own.
        if type(self).async_request is Connection.async_request:
            self.async_request = self._engine.async_request_rpyc  # type: ignore[method-assign]

    def __repr__(self) -> str:
        text: str = super().__repr__()
        return text.replace("Connection", "rpyc_rs.Connection", 1)

    # rpyc's serve() waits on this Condition; the engine never does. With its
    # deque it is over a kilobyte, a twentieth of what an idle connection
    # costs (issue 14), so it is made only if some code asks for it, and the
    # one rpyc's __init__ makes is dropped.
    @property
    def _recv_event(self) -> Condition:
        event: Optional[Condition] = self.__dict__.get("_rpyc_rs_recv_event")
        if event is None:
            event = self.__dict__["_rpyc_rs_recv_event"] = Condition()
        return event

    @_recv_event.setter
    def _recv_event(self, _stock: Condition) -> None:
        pass

    # -- requests ------------------------------------------------------

    def _async_request(self, handler: int, args: Tuple[Any, ...] = (),
                       callback: Callable[[bool, Any], Any] = (lambda a, b: None)) -> None:
        self._engine.async_request(handler, tuple(args), callback)

    def async_request(self, handler: int, *args: Any, **kwargs: Any) -> Any:
        """Sends a request without waiting; returns an rpyc ``AsyncResult``."""
        timeout = kwargs.pop("timeout", None)
        if kwargs:
            raise TypeError(f"got unexpected keyword argument(s) {list(kwargs)}")
        if handler == consts.HANDLE_DEL:
            # Nobody waits for a DEL (netref __del__); its reply is dropped.
            self._engine.async_request(handler, args, None)
            return None
        # Looked up in rpyc.core.protocol at each call, as rpyc's own
        # async_request does, so code that patches it there (rpyc's
        # test_race does) reaches our requests too.
        res = _rpyc_protocol.AsyncResult(self)
        self._engine.async_request(handler, args, res)
        if timeout is not None:
            res.set_expiry(timeout)
        return res

    def _netref_factory(self, id_pack: Any) -> Any:
        """rpyc's, except that the proxy class for an instance of one of the
        peer's classes is made once per class, not once per instance: rpyc
        asks the peer (INSPECT, a round trip) for every new instance, though
        the answer depends only on the class (``get_methods`` walks
        ``type(obj).__mro__``). Classes (``id_pack[2] == 0``) and builtin
        types are rpyc's business as before."""
        if id_pack[2] != 0 and id_pack[0] not in _netref.builtin_classes_cache:
            key = (id_pack[0], id_pack[1])
            cls = self._instance_netref_classes.get(key)
            if cls is None:
                cls = _netref.class_factory(id_pack, self.sync_request(consts.HANDLE_INSPECT, id_pack))
                self._instance_netref_classes[key] = cls
            return cls(self, id_pack)
        return super()._netref_factory(id_pack)

    def _send(self, msg: int, seq: int, args: Any) -> None:
        raise NotImplementedError("rpyc_rs.Connection sends through its engine")

    # -- serving -------------------------------------------------------

    def serve(self, timeout: Any = 1, wait_for_lock: bool = True,
              waiting: Callable[[], bool] = lambda: True) -> bool:
        """Serves one request or reply that arrives within ``timeout``
        seconds (a number, ``None`` for no limit, or an rpyc ``Timeout``).
        Returns True if one was served."""
        if isinstance(timeout, Timeout):
            timeout = timeout.timeleft()
        # Read before `waiting()` is asked: if what it waits for happens
        # after the question, the engine sees the counter moved and returns
        # rather than wait for an event that has already come.
        since = self._engine.generation
        if not waiting():
            return False
        if self._closed and self._engine.closed:
            raise EOFError("connection closed")
        return self._engine.serve(timeout, since)

    def serve_all(self) -> None:
        """Serves all requests and replies for as long as the connection is
        alive, then closes it (rpyc's loop, run by the engine)."""
        try:
            if not self.closed:
                self._engine.serve_all()
        except EOFError:
            pass
        except OSError:
            if not self.closed:
                raise
        finally:
            self.close()

    def poll(self, timeout: Any = 0) -> bool:
        """Serves one message if one arrives within ``timeout``; True if so."""
        return self.serve(timeout, False)

    def _cleanup(self, _anyway: bool = True) -> None:
        engine = getattr(self, "_engine", None)
        if engine is not None:
            engine.shutdown("connection closed locally")
        super()._cleanup(_anyway)

    @property
    def closed(self) -> bool:
        engine = getattr(self, "_engine", None)
        return self._closed or (engine is not None and engine.closed)
