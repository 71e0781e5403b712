"""rpyc-rs: RPyC's wire protocol implemented in Rust.

The heavy lifting lives in the native module :mod:`rpyc_rs._native`, built
from the Rust crate by maturin; this package only gives it a Python face.

- :func:`install` / :func:`uninstall` / :func:`installed`: run every
  connection rpyc creates on the Rust engine (or stop doing so).
- :class:`Connection`: rpyc's ``Connection`` on the Rust engine; a service
  can opt in alone with ``_protocol = rpyc_rs.Connection``.
- :mod:`rpyc_rs.brine`: brine serialization, byte-identical to
  ``rpyc.core.brine``.
"""

from typing import TYPE_CHECKING, Any, List, Literal, Optional, Tuple

from rpyc_rs._native import __version__
from rpyc_rs import brine

if TYPE_CHECKING:  # at run time it is loaded lazily, by __getattr__ below
    from rpyc_rs._connection import Connection

__all__ = ["__version__", "brine", "Connection", "install", "uninstall", "installed"]

# The Service._protocol that install() replaced (a class), to put back.
_saved_protocol: Optional[type] = None
# rpyc.core.netref's syncreq/asyncreq that install() replaced, to put back.
_saved_netref_helpers: Optional[Tuple[Any, Any]] = None
# What install() replaced in rpyc.core.netref's classes and module, as
# (owner, name, previous value or None), to put back.
_saved_netref_methods: Optional[List[Tuple[Any, str, Any]]] = None


def __getattr__(name: str) -> Any:
    # rpyc is only imported when the backend is used, so `rpyc_rs.brine`
    # works without rpyc installed.
    if name == "Connection":
        from rpyc_rs._connection import Connection

        return Connection
    raise AttributeError(f"module 'rpyc_rs' has no attribute {name!r}")


def install() -> None:
    """Makes every connection rpyc creates from now on (``rpyc.connect``,
    ``classic.connect``, the servers, ...) use the Rust engine.

    It sets ``rpyc.core.service.Service._protocol``, the class rpyc
    instantiates for each connection; services that set their own
    ``_protocol`` keep it. Calling it again is harmless.
    """
    global _saved_protocol, _saved_netref_helpers, _saved_netref_methods
    from rpyc.core import netref
    from rpyc.core.service import Service
    from rpyc_rs import _native
    from rpyc_rs._connection import Connection

    if Service.__dict__.get("_protocol") is not Connection:
        _saved_protocol = Service.__dict__.get("_protocol")
        Service._protocol = Connection
    # Every netref method calls netref.syncreq (and __del__ asyncreq), a
    # Python frame between the proxy and the engine; the native ones do the
    # same two steps for any connection, rpyc's own included. The netref
    # methods themselves (BaseNetref.__getattribute__ and __del__, and the
    # methods _make_method makes for each proxied class) go native too.
    if _saved_netref_helpers is None:
        _saved_netref_helpers = (netref.syncreq, netref.asyncreq)
        netref.syncreq = _native.syncreq
        netref.asyncreq = _native.asyncreq
    if _saved_netref_methods is None:
        _saved_netref_methods = _install_netref_methods(netref)

def uninstall() -> None:
    """Undoes :func:`install`: new connections use rpyc's own engine again.
    Connections already open keep the engine they have. Without a prior
    :func:`install` it does nothing."""
    global _saved_protocol, _saved_netref_helpers, _saved_netref_methods
    from rpyc.core import netref
    from rpyc.core.service import Service
    from rpyc.core.protocol import Connection as RpycConnection
    from rpyc_rs._connection import Connection

    if Service.__dict__.get("_protocol") is Connection:
        Service._protocol = _saved_protocol or RpycConnection
    _saved_protocol = None
    if _saved_netref_helpers is not None:
        netref.syncreq, netref.asyncreq = _saved_netref_helpers
        _saved_netref_helpers = None
    if _saved_netref_methods is not None:
        for owner, name, value in reversed(_saved_netref_methods):
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)
        _saved_netref_methods = None


def _install_netref_methods(netref: Any) -> List[Tuple[Any, str, Any]]:
    """Puts the native netref methods in rpyc.core.netref; returns what it
    replaced."""
    from rpyc_rs import _native

    saved: List[Tuple[Any, str, Any]] = []

    def put(owner: Any, name: str, value: Any) -> None:
        saved.append((owner, name, owner.__dict__.get(name)))
        setattr(owner, name, value)

    base = netref.BaseNetref
    getattribute, delete = _native.netref_descriptors(base, netref.LOCAL_ATTRS, netref.DELETED_ATTRS)
    put(base, "__getattribute__", getattribute)
    put(base, "__del__", delete)
    # The classes made from now on (class_factory calls the module's
    # _make_method by name), with rpyc's own for the names the native one
    # leaves to it.
    stock_make_method = netref._make_method

    def _make_method(name: Any, doc: Any) -> Any:
        method = _native.netref_method(name, doc)
        return stock_make_method(name, doc) if method is None else method

    put(netref, "_make_method", _make_method)
    # And the builtin types' classes, which rpyc made when it was imported.
    for cls in list(netref.builtin_classes_cache.values()):
        for name, value in list(vars(cls).items()):
            if getattr(value, "__qualname__", "").startswith("_make_method.<locals>."):
                method = _native.netref_method(name, value.__doc__)
                if method is not None:
                    put(cls, name, method)
    return saved


def installed() -> Literal["rpyc_rs", "rpyc"]:
    """``"rpyc_rs"`` when :func:`install` is in effect, else ``"rpyc"``."""
    from rpyc.core.service import Service
    from rpyc_rs._connection import Connection

    return "rpyc_rs" if Service.__dict__.get("_protocol") is Connection else "rpyc"
