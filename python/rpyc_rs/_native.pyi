"""Type stubs for the native extension module built from the Rust crate."""

from typing import Any, Callable, FrozenSet, List, Mapping, Optional, Tuple, Union, final

# pyo3 lists what the module registers; ci/test's stubtest checks this file
# against the built module, name by name and signature by signature.
__all__ = [
    "__version__",
    "brine_dump",
    "brine_load",
    "brine_dumpable",
    "BrineError",
    "Engine",
    "LocalObjects",
    "get_id_pack",
    "syncreq",
    "asyncreq",
    "connection_root",
    "NetrefMethod",
    "netref_method",
    "netref_descriptors",
    "_at_exit",
    "_set_log_level",
    "_flush_log",
    "cli_main",
]

__version__: str
"""The crate's version (``CARGO_PKG_VERSION``)."""

# --- brine (src/python/brine.rs) ---

_BytesLike = Union[bytes, bytearray, memoryview]

class BrineError(ValueError):
    """Malformed brine data given to ``brine_load`` (truncated, an invalid
    tag, a length the data cannot back, invalid UTF-8, trailing bytes,
    nesting past the depth limit), or a value nested too deeply for
    ``brine_dump``. The message says what and at which offset."""

def brine_dump(obj: object) -> bytes:
    """Serialize ``obj`` to brine bytes, byte-identical to ``rpyc.core.brine.dump``.

    Dispatch is on the exact type (``type(obj) in ...``, as rpyc does).

    Raises:
        TypeError: ``obj`` (or something inside it) is not brine-able; the
            message is rpyc's, ``cannot dump {obj}``.
        UnicodeEncodeError: a ``str`` inside holds lone surrogates.
        ValueError: an ``int`` inside is too long for ``str()``
            (``sys.get_int_max_str_digits``), as with rpyc.
        BrineError: nesting deeper than 512 tuples/frozensets/slices.
    """

def brine_load(data: _BytesLike) -> object:
    """Deserialize the one brine value that spans all of ``data``.

    ``data`` may be any object with the buffer protocol; anything but
    ``bytes`` is copied first.

    Raises:
        BrineError: ``data`` is not exactly one well-formed brine value.
        TypeError: ``data`` does not support the buffer protocol.
    """

def brine_dumpable(obj: object) -> bool:
    """Whether ``obj`` can be sent by value: ``brine_dump`` accepts its type
    (exact types only, recursively) and nesting depth. Agrees with
    ``rpyc.core.brine.dumpable``."""

# --- the protocol engine (src/python/engine.rs) ---

@final
class Engine:
    """The native half of an ``rpyc_rs.Connection``: framing, compression,
    brine, boxing, the seq table and the read loop. Requests from the peer
    are served through the connection's rpyc handlers (``conn._HANDLERS``);
    replies are unboxed with its netref factory, proxy cache and vinegar.

    The engine holds ``conn`` weakly. With ``fd`` it owns a duplicate of
    that socket and does its I/O natively (``tcp``: it is a TCP socket, to
    acknowledge reads at once); without, it goes through the Python rpyc
    ``channel``. ``legacy_framing`` starts in rpyc 5.x's message framing;
    after the first message the engine speaks the peer's. Frames above
    ``max_frame_size`` bytes (default 1 GiB) end the connection. A thread
    waiting for a reply on a socket the engine owns, and ``serve_all`` for
    the next request after serving one, poll for it up to
    ``reply_spin_us`` microseconds (default 50; 0: never) before sleeping.
    """

    def __new__(
        cls,
        conn: Any,
        channel: Any,
        fd: Optional[int] = None,
        peer: str = ...,  # "": unknown
        compress: bool = True,
        max_frame_size: Optional[int] = None,
        tcp: bool = False,
        legacy_framing: bool = False,
        reply_spin_us: Optional[int] = None,
    ) -> "Engine": ...
    def sync_request(self, handler: int, *args: Any) -> Any:
        """Sends a request and waits for its reply within the connection's
        ``sync_request_timeout``, serving the peer's requests meanwhile.

        Raises:
            the peer's exception (through rpyc's vinegar);
            TimeoutError: no reply in time (the connection stays usable);
            EOFError: the connection ended (closed, or the peer sent
                something invalid; the message says which).
        """
    def async_request(
        self,
        handler: int,
        args: Tuple[Any, ...],
        callback: Optional[Callable[[bool, Any], Any]] = None,
    ) -> None:
        """Sends a request; ``callback(is_exc, obj)`` runs on whichever
        thread reads the reply (an ``AsyncResult`` is such a callback).
        Without a callback (a DEL) the request is queued to go out with the
        next frame sent, and its reply is dropped."""
    def async_request_rpyc(self, handler: int, *args: Any, **kwargs: Any) -> Any:
        """rpyc's ``Connection.async_request(handler, *args, timeout=None)``
        done natively: ``None`` for a DEL (queued, never waited for), else an
        ``rpyc.core.protocol.AsyncResult``."""
    def serve(self, timeout: Optional[float] = None, since: Optional[int] = None) -> bool:
        """Serves one incoming message if one arrives within ``timeout``
        seconds (``None``: no limit). True if one was served. With ``since``
        (a ``generation`` read before the caller checked what it waits
        for), returns False at once when anything happened since.

        Raises:
            EOFError: the connection ended.
            whatever a handler or async callback raised that rpyc would
            raise while serving (``SystemExit`` with
            ``propagate_SystemExit_locally``...), and a signal handler's
            exception (``KeyboardInterrupt``).
        """
    @property
    def generation(self) -> int:
        """A counter of the events ``serve`` waits for (replies placed or
        delivered, the reader released, the end)."""
    def serve_all(self) -> None:
        """Serves requests and replies until the connection ends (rpyc's
        ``serve_all`` loop, run natively); returns once it is closed, by
        either side, after closing the Python connection.

        Raises:
            what ``serve`` raises, except ``EOFError``.
        """
    def shutdown(self, reason: str = "connection closed") -> None:
        """Ends the connection at once: pending calls fail with ``EOFError``
        and the socket is shut down."""
    @property
    def closed(self) -> bool:
        """True once the connection has ended."""
    def fileno(self) -> Optional[int]:
        """The descriptor the engine reads, if it owns one."""

# --- the Python world's tables (src/python/tables.rs, proxies.rs) ---

@final
class LocalObjects:
    """rpyc's ``RefCountingColl`` (``conn._local_objects``), native: the
    objects the peer holds, ``key -> [obj, count]``, with rpyc's refcount
    rule; every operation is atomic under the GIL."""
    def __new__(cls) -> "LocalObjects": ...
    def add(self, key: Any, obj: Any) -> None:
        """One more reference sent: stored with count 0 the first time, +1
        after."""
    def clear(self) -> None:
        """Forgets everything."""
    def decref(self, key: Any, count: Optional[Any] = None) -> None:
        """Drops ``count`` (default 1) references: the entry goes when its
        count is below ``count``. KeyError for an unknown key."""
    def __getitem__(self, key: Any, /) -> Any: ...
    def __contains__(self, key: Any, /) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def _dict(self) -> Mapping[Any, List[Any]]:
        """The table itself, as rpyc's ``_dict``, read-only (a
        ``types.MappingProxyType``): it changes through the methods alone."""

def get_id_pack(obj: object) -> Any:
    """rpyc 6's ``get_id_pack(obj)`` as the engine computes it: natively
    where nothing in rpyc's lookups could run user code, else (and always
    under rpyc 5) by ``rpyc.lib.get_id_pack``."""

def syncreq(proxy: Any, handler: int, *args: Any) -> Any:
    """rpyc's ``netref.syncreq``: ``conn.sync_request(handler, proxy, *args)``
    with ``conn`` the proxy's ``____conn__``; ``install()`` puts it in
    ``rpyc.core.netref``."""

def asyncreq(proxy: Any, handler: int, *args: Any) -> Any:
    """rpyc's ``netref.asyncreq``: ``conn.async_request(handler, proxy,
    *args)``; ``install()`` puts it in ``rpyc.core.netref``."""

def connection_root(conn: Any) -> Any:
    """rpyc's ``Connection.root`` getter: ``conn._remote_root``, fetched
    with ``conn.sync_request(HANDLE_GETROOT)`` the first time;
    ``rpyc_rs.Connection.root`` is a property of it."""

# --- netref methods (src/python/netref.rs; installed by rpyc_rs.install) ---

@final
class NetrefMethod:
    """A method ``netref._make_method(name, doc)`` makes, natively: ``__call__``
    (a CALL of the proxy) or any other name (a CALLATTR of it). Binds to a
    proxy as a function does."""

    def __call__(self, _self: Any, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, obj: Any, owner: Any = None, /) -> Any: ...
    @property
    def __name__(self) -> str: ...
    @property
    def __doc__(self) -> Any: ...  # type: ignore[override]

def netref_method(name: Any, doc: Any) -> Optional[NetrefMethod]:
    """What ``netref._make_method(name, doc)`` returns, natively; ``None`` for
    the names rpyc builds otherwise (``__array__`` and the old slicing
    names)."""

def netref_descriptors(base: type, local_attrs: FrozenSet[str], deleted_attrs: FrozenSet[str]) -> Tuple[Any, Any]:
    """``BaseNetref``'s native ``__getattribute__`` and ``__del__`` (method
    descriptors of ``base``), with rpyc's ``LOCAL_ATTRS`` and ``DELETED_ATTRS``."""

def _at_exit() -> None:
    """The ``atexit`` hook the module registers at import: from then on,
    threads blocked in the engine do not re-enter the exiting interpreter."""

# --- logging (src/python/logging.rs; driven by rpyc_rs._logging) ---

def _set_log_level(level: int) -> None:
    """Routes the crate's ``log`` records to Python's ``logging`` (installed
    on the first call) and lets through those at or above ``level``, a
    Python numeric level (5 is Rust's trace; above ``CRITICAL`` turns them
    off)."""

def _flush_log() -> None:
    """Hands the records still queued to ``logging`` now (an ``atexit`` hook)."""

# --- the command-line tool (src/python/cli.rs) ---

def cli_main(argv: List[str]) -> int:
    """Runs the ``rpyc-rs`` tool on ``argv`` (the program name first) with
    the GIL released, and returns its exit status (0 ok, 1 the server
    raised, 2 usage/connection/protocol error)."""
