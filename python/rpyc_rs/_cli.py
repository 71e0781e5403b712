"""The ``rpyc-rs`` console script that ``pip install`` creates: the Rust
command-line tool (``rpyc_rs::cli``), run from the native module, so the
wheel needs no second build tool and behaves as the cargo binary does."""

import signal
import sys

from rpyc_rs import _native


def main() -> None:
    """Runs ``rpyc-rs`` with this process's arguments and exits with its
    status (0 ok, 1 the server raised, 2 usage/connection/protocol error)."""
    # While the Rust code runs, Python's SIGINT handler would only set a flag
    # nobody reads: Ctrl-C ends the tool as it ends the cargo binary instead.
    # `rpyc-rs serve` installs its own SIGINT/SIGTERM handlers (a clean stop).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(_native.cli_main(sys.argv))


if __name__ == "__main__":
    main()
