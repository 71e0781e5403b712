"""An ordinary rpyc server: nothing here knows about rpyc-rs.

    python server.py                   # stock rpyc
    python -m rpyc_rs server.py        # the same program on the Rust engine

Listens on 127.0.0.1 (an ephemeral port unless one is given) and prints
``PORT <n>`` once it accepts connections. Exits when its stdin closes, so it
never outlives whoever started it.
"""

import sys
import threading

import rpyc
from rpyc.utils.server import ThreadedServer


class AppService(rpyc.Service):
    def exposed_echo(self, x):
        return x

    def exposed_add(self, a, b):
        return a + b

    def exposed_numbers(self, n):
        return list(range(n))

    def exposed_apply(self, func, items):
        return [func(x) for x in items]


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadedServer(AppService, hostname="127.0.0.1", port=port,
                            protocol_config={"allow_public_attrs": True})
    threading.Thread(target=server.start, daemon=True).start()
    print("PORT", server.port, flush=True)
    sys.stdin.read()
    server.close()


if __name__ == "__main__":
    main()
