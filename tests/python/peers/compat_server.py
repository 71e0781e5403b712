"""An rpyc server for the compatibility suite, run as a subprocess.

    python compat_server.py [--fast] [--service NAME] [--server-class CLS]
                            [--unix PATH] [--config JSON] [--auth]
                            [--ssl DIR]

``--fast`` calls ``rpyc_rs.install()`` before anything else, so the server's
connections run on the rpyc-rs engine; without it the server is stock rpyc.
``NAME`` is a class in ``compat_service`` or ``classic`` (rpyc's classic
``SlaveService``); ``CLS`` a server class of ``rpyc.utils.server``. ``--auth`` adds a token
authenticator, ``--ssl DIR`` rpyc's ``SSLAuthenticator`` with ``DIR/key.pem``
and ``DIR/cert.pem``. The server
binds 127.0.0.1 port 0 (or the Unix socket ``PATH``), prints ``PORT <port>``
once it listens, and serves until its stdin closes: the test process holds
the other end, so a server never outlives the test run.
"""

import argparse
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _exit_when_parent_goes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--service", default="CompatService")
    ap.add_argument("--server-class", default="ThreadedServer")
    ap.add_argument("--unix")
    ap.add_argument("--config", default="{}")
    ap.add_argument("--auth", action="store_true")
    ap.add_argument("--ssl")
    args = ap.parse_args()

    threading.Thread(target=_exit_when_parent_goes, daemon=True).start()

    import rpyc
    import rpyc.utils.server as servers

    if args.fast:
        import rpyc_rs

        rpyc_rs.install()
        assert rpyc_rs.installed() == "rpyc_rs"

    import compat_service

    if args.service == "classic":
        service = rpyc.SlaveService
    else:
        service = getattr(compat_service, args.service)
    kwargs = {"protocol_config": json.loads(args.config)}
    if args.auth:
        kwargs["authenticator"] = compat_service.RejectingAuthenticator()
    if args.ssl:
        from rpyc.utils.authenticators import SSLAuthenticator

        kwargs["authenticator"] = SSLAuthenticator(os.path.join(args.ssl, "key.pem"),
                                                   os.path.join(args.ssl, "cert.pem"))
    server_cls = getattr(servers, args.server_class)
    if args.unix:
        server = server_cls(service, socket_path=args.unix, **kwargs)
    else:
        server = server_cls(service, hostname="127.0.0.1", port=0, **kwargs)
    # rpyc binds in __init__ but listens in start(); _listen() listens now,
    # so the port is ready the moment it is reported.
    server._listen()
    print("PORT", server.port, flush=True)
    server.start()
    # Leave at once: a normal interpreter exit would wait on the daemon
    # thread blocked reading stdin, which aborts at shutdown.
    os._exit(0)


if __name__ == "__main__":
    main()
