"""Brine, RPyC's value serializer, implemented in Rust.

A drop-in for the functions of ``rpyc.core.brine``: ``dump(obj)`` gives the
same bytes rpyc would, ``load(data)`` reads them back, ``dumpable(obj)`` says
whether ``obj`` can travel by value (exact types only: a subclass of ``int``
or ``tuple`` is not brine-able and travels by reference instead).

Where this module differs from rpyc's, it is stricter on input rpyc never
produces:

- ``load`` raises :class:`BrineError` (a ``ValueError``) for any malformed
  input: truncated data, an invalid tag, a length the data cannot back,
  invalid UTF-8, bytes left over after the value, or nesting deeper than 512
  levels. rpyc raises assorted errors there (``TypeError``, ``struct.error``,
  ``UnicodeDecodeError``, ``RecursionError``) or ignores trailing bytes.
- ``dump`` of a value nested deeper than 512 levels raises
  :class:`BrineError` (rpyc hits ``RecursionError`` near 500), and
  ``dumpable`` says ``False`` for it, so whatever ``dump`` writes, ``load``
  reads.

As with rpyc, ``dump`` of an object that is not brine-able raises
``TypeError("cannot dump ...")``, and a ``str`` with lone surrogates raises
``UnicodeEncodeError``.
"""

from rpyc_rs._native import BrineError
from rpyc_rs._native import brine_dump as dump
from rpyc_rs._native import brine_dumpable as dumpable
from rpyc_rs._native import brine_load as load

__all__ = ["dump", "load", "dumpable", "BrineError"]
