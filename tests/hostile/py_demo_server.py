"""The demo service of `rpyc-rs serve`, in Python, for the hostile-load
suite's Python targets: the same method names and answers, on rpyc's own
ThreadedServer (or ThreadPoolServer).

    python py_demo_server.py [--install] [--pool]

``--install`` runs it on the rpyc-rs engine (``rpyc_rs.install()``);
without it the server is stock rpyc. It binds 127.0.0.1 port 0, prints
``PORT <n>`` once listening and serves until killed or its stdin closes.
"""

import argparse
import os
import sys
import threading
import time


def _exit_when_parent_goes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--install", action="store_true")
    ap.add_argument("--pool", action="store_true")
    args = ap.parse_args()
    if args.install:
        import rpyc_rs

        rpyc_rs.install()
    import rpyc
    from rpyc.utils.server import ThreadedServer, ThreadPoolServer

    class Counter:
        def __init__(self, start):
            self.exposed_value = start

        def exposed_increment(self, by=1):
            self.exposed_value += by
            return self.exposed_value

    class DemoService(rpyc.Service):
        ALIASES = ["DEMO"]

        def exposed_echo(self, x):
            """Returns its argument."""
            return x

        def exposed_add(self, a, b):
            return a + b

        def exposed_counter(self, start=0):
            return Counter(start)

        def exposed_sleep(self, seconds):
            time.sleep(seconds)
            return seconds

    cls = ThreadPoolServer if args.pool else ThreadedServer
    server = cls(DemoService, hostname="127.0.0.1", port=0, logger=None,
                 protocol_config={"allow_public_attrs": True})
    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
    if hasattr(server, "_listen"):
        server._listen()  # listening before the port is announced
    print("PORT", server.port, flush=True)
    server.start()


if __name__ == "__main__":
    main()
