"""Objects for the attribute-policy matrix (test_policy_matrix.py): every
kind of attribute rpyc's ``_check_attr`` and ``_access_attr`` treat
differently, each recording on the server when user code runs (a property,
``__getattr__``, an ``_rpyc_*`` override, a metaclass hook), so a test can
compare not only what a client gets but what ran on the server, in what
order and how often.
"""

import rpyc

#: What user code ran on the server, in order; read and cleared by
#: ``MatrixService.exposed_events``.
EVENTS = []


def note(what):
    EVENTS.append(what)


class Meta(type):
    """A metaclass with an attribute of its own and a ``__getattr__`` that
    notes every miss (rpyc looks up ``_rpyc_getattr`` on ``type(obj)``)."""

    meta_attr = "meta"

    def __getattr__(cls, name):
        note(f"Meta.__getattr__ {name}")
        raise AttributeError(name)


class Probe(metaclass=Meta):
    """Instance and class attributes, exposed and plain names, properties
    that return and that raise, methods, private and name-mangled names, a
    ``__getattr__`` fallback, and the dunders of a sequence."""

    cls_attr = "cls"
    exposed_exp = "exp"
    remote_exp = "remote-exp"

    def __init__(self):
        self.inst_attr = "inst"
        self._private = "private"
        self.__mangled = "mangled"

    @property
    def prop(self):
        note("prop")
        return "prop"

    @property
    def exposed_xprop(self):
        note("exposed_xprop")
        return "xprop"

    @property
    def broken(self):
        note("broken")
        raise AttributeError("broken inside")

    @property
    def exposed_xbroken(self):
        note("exposed_xbroken")
        raise AttributeError("xbroken inside")

    @property
    def raising(self):
        note("raising")
        raise ValueError("raising inside")

    def method(self, x=1):
        return x * 2

    def exposed_emethod(self, x=1):
        return x * 3

    def __getattr__(self, name):
        note(f"__getattr__ {name}")
        if name == "dynamic":
            return "dyn"
        raise AttributeError(f"no {name}")

    def __len__(self):
        return 3

    def __getitem__(self, i):
        if 0 <= i < 3:
            return i * 10
        raise IndexError(i)

    def __iter__(self):
        return iter((0, 10, 20))

    def __repr__(self):
        return "Probe()"


class Slotted:
    """``__slots__``: one slot set, one never set (getattr_static finds the
    slot's descriptor where hasattr says no)."""

    __slots__ = ("a", "b", "exposed_c")

    def __init__(self):
        self.a = 1


class Overridden:
    """``_rpyc_getattr`` / ``_rpyc_setattr`` / ``_rpyc_delattr``: rpyc calls
    them instead of checking the policy."""

    plain = "plain"

    def _rpyc_getattr(self, name):
        note(f"_rpyc_getattr {name}")
        if name in ("secret", "_hidden"):
            return f"got {name}"
        raise AttributeError(f"override refuses {name}")

    def _rpyc_setattr(self, name, value):
        note(f"_rpyc_setattr {name}={value!r}")
        if name == "locked":
            raise AttributeError("locked")

    def _rpyc_delattr(self, name):
        note(f"_rpyc_delattr {name}")


class MatrixService(rpyc.Service):
    """Its methods are also handed out by calling the root itself (a CALL,
    which no policy governs), so a test reaches them under configurations
    that refuse every GETATTR."""

    def on_connect(self, conn):
        self._conn = conn

    def __call__(self):
        return tuple((name[len("exposed_"):], getattr(self, name))
                     for name in dir(self) if name.startswith("exposed_"))

    def exposed_probe(self):
        return Probe()

    def exposed_probe_class(self):
        return Probe

    def exposed_slotted(self):
        return Slotted()

    def exposed_overridden(self):
        return Overridden()

    def exposed_iterator(self):
        # A builtin object: object's attribute lookup, no instance dict.
        return iter([1, 2, 3])

    def exposed_events(self):
        out = tuple(EVENTS)
        EVENTS.clear()
        return out

    def exposed_set_config(self, key, value):
        """Changes this connection's live config, as a user may after
        connecting."""
        self._conn._config[key] = value

    def exposed_replace_config(self, key, value):
        """Rebinds this connection's config to a changed copy (the old dict
        is left as it was), as a user may after connecting."""
        self._conn._config = dict(self._conn._config, **{key: value})

    def exposed_table_size(self):
        """How many objects this side holds for the client."""
        return len(self._conn._local_objects._dict)
