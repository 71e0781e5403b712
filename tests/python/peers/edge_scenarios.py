"""Scenarios from rpyc's own test suite (run against ``rpyc_rs.install()``
by ``ci/upstream``) that once went wrong on rpyc-rs, as small programs for
``tests/python/test_upstream_findings.py``. Each runs stock, or with
``--rs`` on rpyc-rs, and prints one line of JSON.

    python edge_scenarios.py async-wait-race [--rs]
    python edge_scenarios.py ssl-eof CERT_DIR [--rs]
    python edge_scenarios.py daemon-exit [--rs]
"""

import json
import os
import socket
import sys
import threading
import time

import rpyc

RS = "--rs" in sys.argv
if RS:
    import rpyc_rs

    rpyc_rs.install()


def async_wait_race():
    """AsyncResult.wait() while another thread serves the connection. Each
    reply needs an INSPECT round trip while it is delivered (a netref of a
    new class), which is when the engine used to let a waiter read past the
    reply it was waiting for."""
    conn = rpyc.classic.connect_thread()
    threading.Thread(target=conn.serve_all, daemon=True).start()
    waits = []
    for i in range(30):
        conn.execute(f"class C{i}:\n    def m(self): return {i}")
        res = rpyc.async_(conn.namespace[f"C{i}"])()
        res.set_expiry(10)
        t0 = time.monotonic()
        try:
            res.wait()
            waits.append(time.monotonic() - t0)
        except rpyc.AsyncResultTimeout:
            waits.append(None)
    return {"waits": waits}


def ssl_eof(cert_dir):
    """A server that requires a client certificate, and a client without
    one: TLS 1.3 rejects it after the handshake, and the client's first call
    gets the SSL alert as an EOFError."""
    from rpyc.utils.authenticators import SSLAuthenticator
    from rpyc.utils.server import ThreadedServer

    key, cert = os.path.join(cert_dir, "key.pem"), os.path.join(cert_dir, "cert.pem")
    server = ThreadedServer(rpyc.SlaveService, hostname="127.0.0.1", port=0, auto_register=False,
                            authenticator=SSLAuthenticator(key, cert, ca_certs=cert))
    server.logger.quiet = True
    threading.Thread(target=server.start, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.active and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        conn = rpyc.classic.ssl_connect("127.0.0.1", port=server.port, ca_certs=cert)
        conn.modules.sys
        return {"error": None}
    except EOFError as e:
        return {"error": str(e)}
    finally:
        server.close()


def daemon_exit():
    """Exit while a daemon thread is blocked serving: finalization clears
    the module, closing the peer's socket, so the thread's wait ends while
    the interpreter is finalizing."""
    global _there
    from rpyc.core.stream import SocketStream

    here, _there = socket.socketpair()
    conn = rpyc.connect_stream(SocketStream(here))
    threading.Thread(target=conn.serve_all, daemon=True).start()
    time.sleep(0.1)
    return {"exiting": True}


def main():
    args = [a for a in sys.argv[1:] if a != "--rs"]
    name = args[0]
    if name == "async-wait-race":
        out = async_wait_race()
    elif name == "ssl-eof":
        out = ssl_eof(args[1])
    elif name == "daemon-exit":
        out = daemon_exit()
    else:
        raise SystemExit(f"unknown scenario {name!r}")
    out["engine"] = rpyc_rs.installed() if RS else "rpyc"
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
