"""Type stubs for the native extension module built from the Rust crate."""

__version__: str
"""The crate's version (``CARGO_PKG_VERSION``)."""

def brine_dump(obj: object) -> bytes:
    """Serialize ``obj`` to brine bytes, byte-identical to ``rpyc.core.brine.dump``.

    Raises ``TypeError`` if ``obj`` is not brine-able.
    """

class BrineError(ValueError):
    """Malformed brine input (bad tag, truncated body, nesting too deep)."""

def brine_load(data: bytes) -> object:
    """Deserialize one brine value spanning all of ``data`` (any bytes-like object).

    Raises ``BrineError`` on malformed input.
    """

def brine_dumpable(obj: object) -> bool:
    """Whether ``obj`` can be sent by value (dispatch on the exact type)."""
