"""Start a stock rpyc server for the Rust integration tests (tests/common/mod.rs).

    rpyc_server.py [--source SRC] [--service EXPR] [--classic]
                   [--server ThreadedServer|ThreadPoolServer|OneShotServer|...]
                   [--protocol-config JSON] [--unix PATH]
                   [--ssl-keyfile K --ssl-certfile C [--ssl-cafile CA]
                    [--ssl-cert-reqs none|optional|required]]
                   [--register udp:HOST:PORT|tcp:HOST:PORT]

``--source`` is Python code (dedented first, so it may be indented as in a
Rust string literal) run in a namespace where ``rpyc`` is imported; it
typically defines the service class. The service is ``--service``
(a Python expression in that namespace) if given, else the last
``rpyc.Service`` subclass the source defined. ``--classic`` serves
``rpyc.SlaveService``, which is what the ``rpyc_classic`` command serves.

The server binds 127.0.0.1 on an ephemeral port (or the Unix socket
``--unix PATH``), starts listening, and only then prints ``PORT <port>`` (or
``READY <path>``), so the caller can connect the moment it reads that line.
``--ssl-*`` wraps every connection with rpyc's ``SSLAuthenticator``;
``--register`` turns on ``auto_register`` with a UDP or TCP registrar aimed
at HOST:PORT (never a broadcast). It exits when its stdin closes: the test process holds the other end, so a
server never outlives the test that started it, even one that was killed.
"""

import argparse
import json
import os
import sys
import textwrap
import threading

import rpyc
import rpyc.utils.server as servers


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


def pick_service(args):
    if args.classic:
        return rpyc.SlaveService
    ns = {"rpyc": rpyc, "__name__": "rpyc_rs_test_service"}
    exec(textwrap.dedent(args.source or ""), ns)
    if args.service:
        return eval(args.service, ns)
    defined = [
        v for v in ns.values()
        if isinstance(v, type) and issubclass(v, rpyc.Service) and v.__module__ == ns["__name__"]
    ]
    if not defined:
        raise SystemExit("rpyc_server.py: the source defines no rpyc.Service subclass")
    return defined[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source")
    ap.add_argument("--service")
    ap.add_argument("--classic", action="store_true")
    ap.add_argument("--server", default="ThreadedServer")
    ap.add_argument("--protocol-config", default="null")
    ap.add_argument("--unix")
    ap.add_argument("--ssl-keyfile")
    ap.add_argument("--ssl-certfile")
    ap.add_argument("--ssl-cafile")
    ap.add_argument("--ssl-cert-reqs", choices=["none", "optional", "required"])
    ap.add_argument("--register")
    args = ap.parse_args()
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()

    service = pick_service(args)
    server_cls = getattr(servers, args.server)
    kwargs = {"auto_register": False}
    config = json.loads(args.protocol_config)
    if config is not None:
        kwargs["protocol_config"] = config
    if args.ssl_keyfile:
        import ssl
        from rpyc.utils.authenticators import SSLAuthenticator

        reqs = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
        kwargs["authenticator"] = SSLAuthenticator(
            args.ssl_keyfile, args.ssl_certfile, ca_certs=args.ssl_cafile,
            cert_reqs=reqs.get(args.ssl_cert_reqs))
    if args.register:
        from rpyc.utils.registry import TCPRegistryClient, UDPRegistryClient

        kind, host, port = args.register.split(":")
        if kind == "udp":
            kwargs["registrar"] = UDPRegistryClient(ip=host, port=int(port), timeout=2)
        else:
            kwargs["registrar"] = TCPRegistryClient(host, port=int(port), timeout=2)
        kwargs["auto_register"] = True
    if args.unix:
        server = server_cls(service, socket_path=args.unix, **kwargs)
    else:
        server = server_cls(service, hostname="127.0.0.1", port=0, **kwargs)
    # rpyc binds in __init__ but listens only in start(); _listen() (rpyc 5.x
    # and 6.x) listens now, so the address is ready the moment it is printed.
    if hasattr(server, "_listen"):
        server._listen()
    if args.unix:
        print("READY", args.unix, flush=True)
    else:
        print("PORT", server.port, flush=True)
    server.start()


if __name__ == "__main__":
    main()
