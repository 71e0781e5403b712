"""The Python world's native bookkeeping against rpyc's own: the table of
objects the peer holds (``rpyc_rs._native.LocalObjects`` against
``RefCountingColl``) and ``get_id_pack``, which must give rpyc's answer and
run the same user code, in the same order, as rpyc's function."""

import sys
import types

import pytest

import rpyc
import rpyc.lib
from rpyc.lib.colls import RefCountingColl

from rpyc_rs._native import LocalObjects, get_id_pack


def test_local_objects_behave_as_refcountingcoll():
    ours, theirs = LocalObjects(), RefCountingColl()
    key, other = ("m.C", 1, 2), ("m.D", 3, 4)
    ops = [
        ("add", key, "a"), ("add", key, "a"), ("add", other, "b"), ("decref", key, 1),
        ("decref", key, -3), ("decref", other, 10**30), ("add", key, "a"), ("decref", key, 2.5),
    ]
    for op, k, arg in ops:
        getattr(ours, op)(k, arg)
        getattr(theirs, op)(k, arg)
        assert ours._dict == theirs._dict, (op, k, arg)
    assert ours[key] == theirs[key] == "a"
    assert len(ours) == len(theirs._dict) and (key in ours) and (other not in ours)
    assert repr(ours) == repr(theirs)
    for coll in (ours, theirs):
        # The missing key is the error's one argument, a tuple as it is.
        with pytest.raises(KeyError) as info:
            coll[other]
        assert info.value.args == (other,)
        with pytest.raises(KeyError) as info:
            coll.decref(other)
        assert info.value.args == (other,)
    ours.decref(key)  # the default count is 1, as rpyc's
    theirs.decref(key)
    assert ours._dict == theirs._dict
    ours.clear()
    assert len(ours) == 0 and ours._dict == {}


def test_local_objects_dict_is_read_only():
    """``_dict`` is the table itself, read-only: it changes through the
    methods alone (the engine keeps what it knows of it in step)."""
    ours = LocalObjects()
    ours.add(("m.C", 1, 2), "a")
    view = ours._dict
    assert isinstance(view, types.MappingProxyType)
    assert view == {("m.C", 1, 2): ["a", 0]}
    with pytest.raises(TypeError):
        view[("m.D", 3, 4)] = ["b", 0]
    with pytest.raises(TypeError):
        del view[("m.C", 1, 2)]
    ours.decref(("m.C", 1, 2))
    assert view == {}


EVENTS = []


class Plain:
    def method(self):
        return 1


class Slotted:
    __slots__ = ("x",)


class WithGetattr:
    def __getattr__(self, name):
        EVENTS.append(name)
        raise AttributeError(name)


class NamedByProperty:
    @property
    def __name__(self):
        EVENTS.append("__name__ property")
        return "named"


class ClassProperty:
    @property
    def __class__(self):
        EVENTS.append("__class__ property")
        return Plain


class Meta(type):
    pass


class WithMeta(metaclass=Meta):
    pass


def plain_function():
    return 1


def tagged_function():
    return 2


tagged_function.____id_pack__ = ("tag", 1, 2)


OBJECTS = {
    "instance": Plain(),
    "bound method": Plain().method,
    "bound method of a tagged function": types.MethodType(tagged_function, Plain()),
    "slots": Slotted(),
    "__getattr__": WithGetattr(),
    "__name__ property": NamedByProperty(),
    "__class__ property": ClassProperty(),
    "metaclass instance": WithMeta(),
    "class": Plain,
    "metaclass": Meta,
    "module": sys,
    "function": plain_function,
    "tagged function": tagged_function,
    "builtin function": len,
    "list": [1, 2],
    "dict": {"a": 1},
    "list iterator": iter([1]),
    "int subclass": True,
    "exception": ValueError("x"),
}


@pytest.mark.parametrize("name", list(OBJECTS))
def test_get_id_pack_is_rpycs(name):
    obj = OBJECTS[name]
    EVENTS.clear()
    want = rpyc.lib.get_id_pack(obj)
    want_events = list(EVENTS)
    EVENTS.clear()
    got = get_id_pack(obj)
    assert got == want
    assert EVENTS == want_events


#: Answered without rpyc's function under rpyc 6: nothing in them can run
#: user code during the lookups rpyc makes.
NATIVE = {"instance", "bound method", "slots", "list", "dict", "list iterator", "exception", "int subclass",
          "function", "builtin function"}


@pytest.mark.parametrize("name", list(OBJECTS))
def test_get_id_pack_native_only_where_certain(name, monkeypatch):
    calls = []
    real = rpyc.lib.get_id_pack

    def spy(obj):
        calls.append(obj)
        return real(obj)

    monkeypatch.setattr(rpyc.lib, "get_id_pack", spy)
    get_id_pack(OBJECTS[name])
    native = name in NATIVE and int(rpyc.__version__.split(".")[0]) >= 6
    assert (calls == []) == native


def test_get_id_pack_follows_class_changes():
    """The native answer is remembered per class and version tag: renaming
    a class, moving it to another module, giving a base class an
    ``____id_pack__`` or an instance one of its own all show at once."""

    class Base:
        pass

    class Thing(Base):
        pass

    obj = Thing()
    for _ in range(3):  # the second and third answers come from the memo
        assert get_id_pack(obj) == rpyc.lib.get_id_pack(obj)
    Thing.__name__ = "Renamed"
    assert get_id_pack(obj) == rpyc.lib.get_id_pack(obj)
    assert get_id_pack(obj)[0].endswith(".Renamed")
    Thing.__module__ = "elsewhere"
    assert get_id_pack(obj) == rpyc.lib.get_id_pack(obj) == ("elsewhere.Renamed", id(Thing), id(obj))
    other = Thing()
    other.____id_pack__ = ("own", 1, 2)
    assert get_id_pack(other) == rpyc.lib.get_id_pack(other) == ("own", 1, 2)
    assert get_id_pack(obj) == rpyc.lib.get_id_pack(obj)
    Base.____id_pack__ = ("from base", 3, 4)
    assert get_id_pack(obj) == rpyc.lib.get_id_pack(obj) == ("from base", 3, 4)
    del Base.____id_pack__
    assert get_id_pack(obj) == rpyc.lib.get_id_pack(obj) == ("elsewhere.Renamed", id(Thing), id(obj))
    # Many classes made at run time: each gets its own answer.
    for i in range(50):
        cls = type(f"Made{i}", (), {})
        inst = cls()
        assert get_id_pack(inst) == rpyc.lib.get_id_pack(inst)
