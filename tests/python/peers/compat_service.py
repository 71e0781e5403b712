"""Services and objects the compatibility suite (tests/python/test_compat_*.py)
serves from its subprocess servers.

This module is imported by name on both ends: by the server script
(``compat_server.py``) to build the service, and by the test process so that
``CustomError`` exists there too (vinegar only re-creates a custom exception
class when the module that defines it is already imported on the receiving
side). Keep it free of test-framework imports.
"""

import gc
import os
import threading
import time

import rpyc


class CustomError(Exception):
    """A user-defined exception with an extra public attribute."""

    def __init__(self, message, code=0):
        super().__init__(message, code)
        self.code = code


class Thing:
    """A plain object to be reached through a netref: public and private
    attributes, a method, the dunders a user compares, hashes, prints and
    uses as a context manager."""

    def __init__(self, value):
        self.value = value
        self.public = "public"
        self._private = "private"
        self.entered = 0
        self.exited = None

    def double(self):
        return self.value * 2

    def __eq__(self, other):
        if isinstance(other, Thing):
            return self.value == other.value
        return self.value == other

    def __lt__(self, other):
        return self.value < (other.value if isinstance(other, Thing) else other)

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        return f"Thing({self.value!r})"

    def __str__(self):
        return f"a thing of {self.value}"

    def __len__(self):
        return 3

    def __enter__(self):
        self.entered += 1
        return self

    def __exit__(self, typ, val, tb):
        self.exited = None if typ is None else typ.__name__
        return False


#: How many connections this process's services saw end (on_disconnect).
DISCONNECTS = [0]


class _Name(str):
    """A str subclass: a key made with it equals rpyc's own."""


class Reclassed(Thing):
    """What ``reclass`` turns a Thing into."""

    def double(self):
        return self.value * 3


class CompatService(rpyc.Service):
    """The test service: one exposed method per behaviour the suite probes."""

    def on_connect(self, conn):
        self._conn = conn
        self._kept = []

    def on_disconnect(self, conn):
        self._kept = []
        DISCONNECTS[0] += 1

    def exposed_disconnects(self):
        return DISCONNECTS[0]

    # -- which engine serves this connection ----------------------------
    def exposed_protocol(self):
        cls = type(self._conn)
        return f"{cls.__module__}.{cls.__qualname__}"

    # -- values ---------------------------------------------------------
    def exposed_echo(self, x):
        return x

    def exposed_type_name(self, x):
        # A netref's class attributes live on the other side; say "netref".
        if isinstance(x, rpyc.BaseNetref):
            return "netref"
        return type(x).__name__

    def exposed_add(self, a, b):
        return a + b

    def exposed_kwargs(self, *args, **kwargs):
        return args, tuple(sorted(kwargs.items()))

    def exposed_big(self, n):
        # Compressible: a long run of a short pattern.
        return b"0123456789abcdef" * (n // 16)

    def exposed_length(self, data):
        return len(data)

    # -- objects by reference ------------------------------------------
    def exposed_get_list(self):
        return [1, 2, 3]

    def exposed_get_dict(self):
        return {"a": 1, "b": 2}

    def exposed_get_thing(self, value=7):
        return Thing(value)

    def exposed_reclass(self, thing):
        # The object the peer holds changes class: rpyc's get_id_pack (and
        # so the key its DEL is released under) changes with it.
        thing.__class__ = Reclassed
        return thing.double()

    def exposed_forget(self, thing, plain=True):
        # Drops every reference the peer holds to `thing` from this side's
        # table, as code reaching into `_local_objects` may, by a key equal
        # to rpyc's: the very tuple rpyc makes, or one whose name is a str
        # subclass. The peer naming `thing` afterwards gets rpyc's KeyError.
        key = rpyc.lib.get_id_pack(thing)
        if not plain:
            key = (_Name(key[0]), key[1], key[2])
        self._conn._local_objects.decref(key, 10**6)

    def exposed_keep(self, obj):
        # Holds a reference to the caller's object until release().
        self._kept.append(obj)
        return len(self._kept)

    def exposed_release(self):
        self._kept = []
        gc.collect()

    def exposed_count(self, n):
        return iter(range(n))

    # -- exceptions -----------------------------------------------------
    def exposed_raise_builtin(self, kind):
        exc = {"KeyError": KeyError("missing"), "ValueError": ValueError("bad value"),
               "ZeroDivisionError": None, "StopIteration": StopIteration(),
               "SystemExit": SystemExit(7), "unbrinable": ValueError([1, 2], {3})}[kind]
        if exc is None:
            return 1 / 0
        raise exc

    def exposed_raise_custom(self):
        raise CustomError("custom failure", 42)

    # -- callbacks ------------------------------------------------------
    def exposed_call(self, func, *args, **kwargs):
        return func(*args, **kwargs)

    def exposed_pingpong(self, callback, depth):
        """Client and server call each other alternately: the client's
        ``callback(depth - 1)`` calls back into this method, and so on."""
        if depth <= 0:
            return ["server"]
        return ["server"] + list(callback(depth - 1))

    def exposed_call_later(self, func, times, interval=0.01):
        """Calls ``func(i)`` ``times`` times from a server thread, as a
        server pushing events would; the client needs a BgServingThread."""

        def run():
            for i in range(times):
                time.sleep(interval)
                try:
                    func(i)
                except Exception:  # the client went away: nothing to report to
                    return

        threading.Thread(target=run, daemon=True).start()

    # -- time and life --------------------------------------------------
    def exposed_sleep(self, seconds):
        time.sleep(seconds)
        return seconds

    def exposed_die(self):
        # The whole server process dies in the middle of this call.
        os._exit(3)

    # -- refcount tables ------------------------------------------------
    def exposed_local_objects(self):
        """How many objects this side holds for the peer (after a gc)."""
        gc.collect()
        return len(self._conn._local_objects._dict)

    def exposed_proxies(self):
        gc.collect()
        return len(self._conn._proxy_cache)

    # -- pickling a netref -----------------------------------------------
    def exposed_pickled(self, obj):
        import pickle

        return pickle.dumps(obj)


class PolicyService(rpyc.Service):
    """Attribute policy probes: the root itself has public, private and
    exposed attributes, and hands out a ``Thing``."""

    public_attr = "public"
    _private_attr = "private"
    exposed_answer = 42

    def exposed_get_thing(self):
        return Thing(1)


class RejectingAuthenticator:
    """Accepts a client that first sends the 4 bytes ``b"RSRS"``; its
    credentials are the string ``"friend"``. Anything else is rejected."""

    def __call__(self, sock):
        from rpyc.utils.authenticators import AuthenticationError

        got = b""
        sock.settimeout(5)
        while len(got) < 4:
            chunk = sock.recv(4 - len(got))
            if not chunk:
                break
            got += chunk
        sock.settimeout(None)
        if got != b"RSRS":
            raise AuthenticationError("wrong token")
        return sock, "friend"


class CredentialsService(rpyc.Service):
    """Reports what the authenticator said about the client."""

    def on_connect(self, conn):
        self._conn = conn

    def exposed_credentials(self):
        return self._conn._config["credentials"]

    def exposed_protocol(self):
        cls = type(self._conn)
        return f"{cls.__module__}.{cls.__qualname__}"

    def exposed_pid(self):
        return os.getpid()
from matrix_service import MatrixService  # noqa: E402,F401  (the policy matrix's service)
