"""Brine, RPyC's value serializer, implemented in Rust.

A drop-in for the functions of ``rpyc.core.brine``: ``dump(obj)`` gives the
same bytes rpyc would, ``load(data)`` reads them back, ``dumpable(obj)`` says
whether ``obj`` can travel by value (exact types only: a subclass of ``int``
or ``tuple`` is not brine-able and travels by reference instead).
Malformed input to ``load`` raises ``BrineError`` (a ``ValueError``).
"""

from rpyc_rs._native import BrineError
from rpyc_rs._native import brine_dump as dump
from rpyc_rs._native import brine_dumpable as dumpable
from rpyc_rs._native import brine_load as load

__all__ = ["dump", "load", "dumpable", "BrineError"]
