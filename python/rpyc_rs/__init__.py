"""rpyc-rs: RPyC's wire protocol implemented in Rust.

The heavy lifting lives in the native module :mod:`rpyc_rs._native`, built
from the Rust crate by maturin; this package only gives it a Python face.

- :mod:`rpyc_rs.brine`: brine serialization, byte-identical to
  ``rpyc.core.brine``.
"""

from rpyc_rs._native import __version__
from rpyc_rs import brine

__all__ = ["__version__", "brine"]
