"""Rust log records in Python's :mod:`logging`, under the ``rpyc_rs`` logger.

The native module forwards the crate's ``log`` records (a connection closed
for a bad frame or because the peer went away, a server's accept errors...)
to ``logging.getLogger("rpyc_rs.<module>")`` at the matching level
(Rust's ``trace`` is level 5, below ``DEBUG``). So
``logging.basicConfig(level=logging.DEBUG)`` shows them.

To keep records that nobody wants from costing anything, the native side
only formats those at or above the most verbose level an ``rpyc_rs`` logger
lets through. :func:`sync_level` tells it that level; it runs when the
backend is loaded and whenever a connection opens, so configure logging
before connecting (a level lowered later takes effect for the next
connection).
"""

import atexit
import logging
from typing import List

from rpyc_rs import _native

LOGGER_NAME = "rpyc_rs"
"""The root of the hierarchy the Rust records go to."""

# From most to least verbose: Rust's trace, then the standard levels.
_LEVELS = (5, logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


def _rpyc_rs_loggers() -> List[logging.Logger]:
    """``rpyc_rs`` and its existing descendants (one may be set more verbose
    than its parent)."""
    found = [logging.getLogger(LOGGER_NAME)]
    prefix = LOGGER_NAME + "."
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith(prefix) and isinstance(logger, logging.Logger):
            found.append(logger)
    return found


def most_verbose_level() -> int:
    """The lowest level some ``rpyc_rs`` logger would handle now, or one
    above ``CRITICAL`` when all are off (``logging.disable``, ...)."""
    loggers = _rpyc_rs_loggers()
    for level in _LEVELS:
        if any(logger.isEnabledFor(level) for logger in loggers):
            return level
    return logging.CRITICAL + 1


def sync_level() -> None:
    """Tells the native side which records are wanted now (see the module
    docs); cheap enough to run per connection."""
    _native._set_log_level(most_verbose_level())


sync_level()
# Records queued by the native side when the program ends still reach the
# handlers (before logging's own atexit hook, registered earlier, closes them).
atexit.register(_native._flush_log)
