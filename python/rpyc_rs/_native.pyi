"""Type stubs for the native extension module built from the Rust crate."""

from typing import Union

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
