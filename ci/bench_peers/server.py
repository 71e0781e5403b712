"""A Python rpyc server for ci/bench_calls.py: stock rpyc, or rpyc with
``rpyc_rs.install()`` (``--backend rpyc_rs``), serving :class:`BenchService`.

    .venv/bin/python ci/bench_peers/server.py --backend stock|rpyc_rs [--port P]

It is rpyc's own ``ThreadedServer`` (a thread per connection, what
``rpyc_classic`` runs) on 127.0.0.1, so the comparison is the one a user
makes. It prints ``listening on 127.0.0.1:PORT`` once it accepts
connections (the first line, as ``rpyc-rs serve`` prints it) and exits
when its stdin closes: the benchmark holds the other end, so a server never
outlives the benchmark that started it.
"""

import argparse
import os
import sys
import threading

import rpyc
from rpyc.utils.server import ThreadedServer


class BenchService(rpyc.Service):
    """What the benchmark calls; ``echo`` has the same name and behaviour as
    the Rust demo service's, so one client drives either server."""

    def exposed_echo(self, x):
        return x

    def exposed_make_list(self, n):
        # A list is not a brine type: the client gets a netref and iterates
        # it remotely (one round trip per item), which is scenario (c).
        return list(range(int(n)))

    def exposed_counter(self, start=0):
        # A new object of a user class (the Rust demo service has one too).
        return Counter(start)

    def exposed_call_back(self, fn, *args):
        # Calls the client's function: a callback round.
        return fn(*args)


class Counter:
    """A small object of a user class, as the Rust demo service's counter:
    a method and a value."""

    def __init__(self, start):
        self.exposed_value = start

    def exposed_increment(self, by=1):
        self.exposed_value += by
        return self.exposed_value


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=("stock", "rpyc_rs"), required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    if args.backend == "rpyc_rs":
        import rpyc_rs

        rpyc_rs.install()
    server = ThreadedServer(
        BenchService,
        hostname="127.0.0.1",
        port=args.port,
        # 8 hammering clients plus the ones waiting their turn.
        backlog=128,
        protocol_config={"sync_request_timeout": 120},
    )
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    # rpyc binds in __init__ but listens only in start(); _listen() (rpyc
    # 5.x and 6.x; start() then skips it) listens now, so the address works
    # the moment it is printed.
    server._listen()
    host, port = server.listener.getsockname()[:2]
    print(f"listening on {host}:{port} (rpyc {rpyc.__version__} ThreadedServer, backend {args.backend})", flush=True)
    server.start()


if __name__ == "__main__":
    main()
