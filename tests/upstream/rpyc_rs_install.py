"""pytest plugin: run a test suite with rpyc-rs as rpyc's back end.

``ci/upstream`` loads it (``-p rpyc_rs_install``, with this directory on
``PYTHONPATH``) for its second pass over rpyc's own test suite.

``pytest_configure`` runs before any test module is imported, and
``rpyc_rs.install()`` sets ``rpyc.core.service.Service._protocol``: every
connection rpyc creates in this process from then on is an
``rpyc_rs.Connection``, the clients the tests open and the servers they start
in threads alike (``ThreadedServer``, ``OneShotServer``, ``connect_thread``...
all instantiate ``service._protocol``). Services that set their own
``_protocol`` keep it. Servers the tests start as subprocesses
(``bin/rpyc_classic.py``) are separate interpreters and stay stock rpyc, so
those tests check rpyc-rs against a stock peer.

The header line and the summary at the end say how many rpyc-rs connections
the run created, so a pass that silently ran on stock rpyc shows up.
"""

import threading

_count = 0
_count_lock = threading.Lock()


def pytest_configure(config):
    global _count
    import rpyc_rs
    from rpyc_rs._connection import Connection

    rpyc_rs.install()
    if rpyc_rs.installed() != "rpyc_rs":
        raise RuntimeError("rpyc_rs.install() did not take effect")

    original_init = Connection.__init__
    if getattr(original_init, "_rpyc_rs_counted", False):
        return

    def counting_init(self, *args, **kwargs):
        global _count
        with _count_lock:
            _count += 1
        return original_init(self, *args, **kwargs)

    counting_init._rpyc_rs_counted = True
    Connection.__init__ = counting_init


def pytest_report_header(config):
    import rpyc
    import rpyc_rs

    return (f"rpyc_rs {rpyc_rs.__version__} installed as the back end of rpyc {rpyc.__version__} "
            f"(rpyc_rs.installed() = {rpyc_rs.installed()!r})")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    terminalreporter.write_line(f"rpyc_rs connections created in this process: {_count}")
