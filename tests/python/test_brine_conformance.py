"""Conformance of ``rpyc_rs.brine`` against the installed ``rpyc.core.brine``.

A seeded generator builds thousands of nested brine-able values covering
every type and every encoding boundary (small-int range, ``_L1``/``_L4``
lengths, tuple sizes, i64 edges, huge ints, nan/inf/-0.0, text beyond the
BMP). For each value:

- ``rpyc_rs.brine.dump(v) == rpyc.core.brine.dump(v)``, byte for byte;
- each side loads the other's bytes back to the same value (compared through
  ``canon``: exact types, float bits, frozensets as sets, so nan and -0.0
  are checked rather than skipped);
- both ``dumpable`` functions say True.

Then ``dumpable`` and ``dump`` are checked to agree with rpyc on objects that
are *not* brine-able (subclasses, containers, arbitrary objects, brine-able
containers hiding one of those).

ci/test runs this file under rpyc 6.0.2 and again under 5.3.1. A failure
names the seed and index; ``_values(seed)[index]`` rebuilds the value.
"""

from __future__ import annotations

import collections
import enum
import math
import random
import struct
import sys
from typing import Any, List

import pytest

from rpyc.core import brine as ref
from rpyc_rs import brine as rs

pytestmark = pytest.mark.interop

# --------------------------------------------------------------------------
# comparing values


def canon(v: Any) -> Any:
    """A hashable, exactly comparable stand-in for a brine value.

    Types are kept apart (``True`` vs ``1``, ``1`` vs ``1.0``), floats compare
    by their bits (so nan equals nan and ``-0.0`` differs from ``0.0``), and
    frozensets compare as sets whatever their iteration order.
    """
    t = type(v)
    if t is float:
        return ("float", struct.pack(">d", v))
    if t is complex:
        return ("complex", struct.pack(">dd", v.real, v.imag))
    if t is tuple:
        return ("tuple", tuple(canon(x) for x in v))
    if t is frozenset:
        return ("frozenset", len(v), frozenset(canon(x) for x in v))
    if t is slice:
        return ("slice", canon(v.start), canon(v.stop), canon(v.step))
    if v is None or v is NotImplemented or v is Ellipsis:
        return ("singleton", repr(v))
    if t in (bool, int, str, bytes):
        return (t.__name__, v)
    raise AssertionError(f"not a brine value: {type(v)!r}")


def short(v: Any, limit: int = 300) -> str:
    r = repr(v)
    return r if len(r) <= limit else r[:limit] + f"... ({len(r)} chars)"


# --------------------------------------------------------------------------
# generating values

#: Lengths that sit on an encoding boundary (1-4 have their own tags, 255/256
#: switch from a u8 to a u32 length), plus a long one.
BOUNDARY_LENGTHS = [0, 1, 2, 3, 4, 5, 255, 256, 257]
LONG_LENGTH = 70_000

#: Ints on every boundary: the small-int tags cover -48..159.
BOUNDARY_INTS = [
    -49, -48, -47, -1, 0, 1, 158, 159, 160, 161, 255, 256, 65535, 65536,
    2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32,
    2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, -(2**64),
    10**18, 10**19, -(10**19), 10**100,
    # where loading switches from an i128 fast path to CPython's parser
    2**127 - 1, 2**127, -(2**127), -(2**127) - 1, 10**38 - 1, 10**38, -(10**38) + 1, -(10**38),
]

SPECIAL_FLOATS = [
    0.0, -0.0, 1.0, -1.5, math.nan, -math.nan, math.inf, -math.inf,
    5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.1, 18.2,
]

#: Code point ranges for text: ASCII, Latin-1, the rest of the BMP (without
#: surrogates, which cannot be encoded), and beyond the BMP.
CHAR_RANGES = [(0x00, 0x7F), (0x80, 0xFF), (0x100, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]


def rand_text(rng: random.Random, n: int) -> str:
    if n > 300:  # long text: a random chunk repeated
        chunk = rand_text(rng, 257)
        return (chunk * (n // len(chunk) + 1))[:n]
    rand = rng.random
    kind = rng.randrange(4)
    if kind == 0:  # ASCII only: the UTF-8 length is exactly n
        return "".join(map(chr, rng.choices(_PRINTABLE, k=n)))
    if kind == 1:  # one range throughout
        r = rng.choice(_RANGES)
        return "".join(chr(r[int(rand() * len(r))]) for _ in range(n))
    # mixed, with emoji and other astral characters likely
    return "".join(chr(r[int(rand() * len(r))]) for r in rng.choices(_RANGES, k=n))


_PRINTABLE = range(0x20, 0x7F)
_RANGES = [range(lo, hi + 1) for lo, hi in CHAR_RANGES]


def rand_bytes(rng: random.Random, n: int) -> bytes:
    # (random.randbytes is 3.9+)
    return rng.getrandbits(8 * n).to_bytes(n, "big") if n else b""


def rand_int(rng: random.Random) -> int:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(BOUNDARY_INTS)
    if kind == 1:
        return rng.randint(-60, 170)  # around the small-int range
    if kind == 2:
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == 3:
        bits = rng.randint(1, 64)
        return rng.choice((1, -1)) * rng.getrandbits(bits)
    if kind == 4:  # huge: from just past i64 to hundreds of digits (< 4300,
        # Python's default limit for int <-> str)
        digits = rng.choice([20, 21, 40, 100, 254, 255, 256, 257, 300, 1000, 4000])
        n = rng.randint(10 ** (digits - 1), 10**digits - 1)
        return rng.choice((1, -1)) * n
    return rng.randint(-(10**6), 10**6)


def rand_float(rng: random.Random) -> float:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.choice(SPECIAL_FLOATS)
    if kind == 1:
        return struct.unpack(">d", rng.getrandbits(64).to_bytes(8, "big"))[0]  # any bits, nan payloads too
    if kind == 2:
        return rng.uniform(-1e6, 1e6)
    return float(rng.randint(-(2**53), 2**53))


def rand_length(rng: random.Random, long_ok: bool) -> int:
    r = rng.random()
    if r < 0.7:
        return rng.choice(BOUNDARY_LENGTHS)
    if r < 0.98 or not long_ok:
        return rng.randint(0, 600)
    return LONG_LENGTH


class Gen:
    """Random brine values with a size budget, so that nesting stays cheap."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.budget = 0

    def scalar(self) -> Any:
        rng = self.rng
        kind = rng.randrange(11)
        if kind == 0:
            return rng.choice([None, NotImplemented, Ellipsis])
        if kind == 1:
            return rng.choice([True, False])
        if kind in (2, 3):
            return rand_int(rng)
        if kind == 4:
            return rand_float(rng)
        if kind == 5:
            return complex(rand_float(rng), rand_float(rng))
        if kind in (6, 7):
            n = rand_length(rng, long_ok=self.budget > LONG_LENGTH)
            self.budget -= n
            return rand_bytes(rng, n)
        n = rand_length(rng, long_ok=self.budget > 4 * LONG_LENGTH)
        self.budget -= n
        return rand_text(rng, n)

    def value(self, depth: int = 0, hashable_only: bool = False) -> Any:
        rng = self.rng
        self.budget -= 1
        if depth >= 6 or self.budget <= 0 or rng.random() < 0.45:
            return self.scalar()
        kind = rng.randrange(10)
        if kind < 6:
            r = rng.random()
            if r < 0.6:
                n = rng.choice([0, 1, 2, 3, 4, 5])
            elif r < 0.85:
                n = rng.randint(6, 20)
            else:
                n = rng.choice([255, 256]) if self.budget > 300 else rng.randint(0, 4)
            return tuple(self.value(depth + 1, hashable_only) for _ in range(n))
        if kind < 8:
            n = rng.choice([0, 1, 2, 3, 5, 8, 40])
            return frozenset(self.value(depth + 1, hashable_only=True) for _ in range(n))
        if hashable_only and sys.version_info < (3, 12):
            # Slices are unhashable before 3.12, so they cannot sit in a frozenset.
            return self.scalar()
        parts = [self.slice_part(depth) for _ in range(3)]
        return slice(*parts)

    def slice_part(self, depth: int) -> Any:
        r = self.rng.random()
        if r < 0.3:
            return None
        if r < 0.7:
            return rand_int(self.rng)
        return self.value(depth + 1)


def _values(seed: int, count: int = 150) -> List[Any]:
    g = Gen(seed)
    out = []
    for _ in range(count):
        g.budget = 2_000
        if g.rng.random() < 0.03:
            g.budget = 400_000  # now and then, room for long text and 256-tuples
        out.append(g.value())
    return out


SEEDS = list(range(24))  # 24 x 150 = 3600 generated values


# --------------------------------------------------------------------------
# dumpable values


def check_value(v: Any, where: str) -> None:
    expected = ref.dump(v)
    got = rs.dump(v)
    assert got == expected, f"{where}: dump differs for {short(v)}"
    want = canon(v)
    assert canon(rs.load(expected)) == want, f"{where}: rpyc_rs.load(rpyc.dump(v)) differs for {short(v)}"
    assert canon(ref.load(got)) == want, f"{where}: rpyc.load(rpyc_rs.dump(v)) differs for {short(v)}"
    assert rs.dumpable(v) is True, f"{where}: rpyc_rs says not dumpable: {short(v)}"
    assert ref.dumpable(v) is True


@pytest.mark.parametrize("seed", SEEDS)
def test_random_values_match_rpyc(seed: int) -> None:
    for i, v in enumerate(_values(seed)):
        check_value(v, f"seed {seed} index {i}")


BOUNDARY_VALUES: List[Any] = (
    [None, NotImplemented, Ellipsis, True, False]
    + BOUNDARY_INTS
    + [-n for n in BOUNDARY_INTS]
    + list(range(-60, 170))
    + [int("9" * n) for n in (254, 255, 256, 257, 1000, 4299)]
    + SPECIAL_FLOATS
    + [complex(a, b) for a in SPECIAL_FLOATS[:8] for b in SPECIAL_FLOATS[:8]]
    + [b"\x00" * n for n in BOUNDARY_LENGTHS + [LONG_LENGTH]]
    + [bytes(range(256)) * 3]
    + ["a" * n for n in BOUNDARY_LENGTHS + [LONG_LENGTH]]
    # UTF-8 lengths around 255/256: 'é' is 2 bytes, '🌍' 4, '€' 3
    + ["é" * n for n in (127, 128, 129)]
    + ["€" * 85, "€" * 86, "🌍" * 63, "🌍" * 64, "🌍" * 65, "a🌍", "\U0010ffff", "\x00", "\ufeff"]
    + [tuple(range(n)) for n in BOUNDARY_LENGTHS + [1000, 70_000]]
    + [tuple((i, str(i)) for i in range(n)) for n in (255, 256)]
    + [((((),),),), (None, (None, (None,))), ((1, 2), (3, (4, 5)))]
    + [frozenset(), frozenset([1]), frozenset(range(100)), frozenset(["a", b"a", 1, 1.5, None, (1, 2)])]
    + [frozenset([frozenset([1, 2]), frozenset()]), frozenset([math.nan]), frozenset([-0.0])]
    + [slice(None), slice(1, 2, 3), slice(-49, 160, None), slice("a", b"b", (1, 2)), slice(slice(1), None)]
    # rpyc's own docstring example
    + [("he", 7, "llo", 8, (), 900, None, True, Ellipsis, 18.2, 18.2j + 13, slice(1, 2, 3),
        frozenset([5, 6, 7]), NotImplemented)]
)


@pytest.mark.parametrize("index", range(len(BOUNDARY_VALUES)))
def test_boundary_values_match_rpyc(index: int) -> None:
    check_value(BOUNDARY_VALUES[index], f"boundary value {index}")


def test_deep_nesting_within_both_limits() -> None:
    # rpyc recurses twice per tuple level; stay well inside its stack.
    v: Any = "leaf"
    for _ in range(200):
        v = (v,)
    check_value(v, "200 nested tuples")


# --------------------------------------------------------------------------
# values that are not brine-able


class Color(enum.IntEnum):
    RED = 1


class Flavor(str, enum.Enum):
    SWEET = "sweet"


Point = collections.namedtuple("Point", "x y")


class MyTuple(tuple):
    pass


class MyStr(str):
    pass


class MyInt(int):
    pass


class MyFloat(float):
    pass


class MyBytes(bytes):
    pass


class MyFrozenSet(frozenset):
    pass


class Plain:
    def __str__(self) -> str:
        return "Plain!"


def _undumpables() -> List[Any]:
    return [
        [1, 2],
        [],
        {"a": 1},
        {},
        {1, 2},
        bytearray(b"ab"),
        memoryview(b"ab"),
        Color.RED,
        Flavor.SWEET,
        Point(1, 2),
        MyTuple((1, 2)),
        MyStr("x"),
        MyInt(3),
        MyFloat(1.5),
        MyBytes(b"x"),
        MyFrozenSet([1]),
        object(),
        Plain(),
        int,
        type(None),
        len,
        lambda: 0,
        range(3),
        iter(()),
        (1, [2]),
        (1, (2, (3, [4]))),
        ((), {}, None),
        (Color.RED,),
        (Point(1, 2),),
        frozenset([Color.RED]),
        frozenset([1, MyInt(2)]),
        frozenset([(1, Point(1, 2))]),
        slice([1], 2, 3),
        slice(1, 2, Color.RED),
        slice(None, (1, [2])),
    ]


UNDUMPABLES = _undumpables()


@pytest.mark.parametrize("index", range(len(UNDUMPABLES)), ids=[type(o).__name__ for o in UNDUMPABLES])
def test_undumpable_agrees_with_rpyc(index: int) -> None:
    obj = UNDUMPABLES[index]
    assert ref.dumpable(obj) is False
    assert rs.dumpable(obj) is False
    with pytest.raises(TypeError) as want:
        ref.dump(obj)
    with pytest.raises(TypeError) as got:
        rs.dump(obj)
    # rpyc's message names the innermost object it could not dump.
    assert str(got.value) == str(want.value)


def test_lone_surrogate_str_fails_like_rpyc() -> None:
    s = "a\ud800b"
    assert ref.dumpable(s) is True and rs.dumpable(s) is True  # by type
    with pytest.raises(UnicodeEncodeError):
        ref.dump(s)
    with pytest.raises(UnicodeEncodeError):
        rs.dump((1, s))


@pytest.mark.skipif(not hasattr(sys, "get_int_max_str_digits"), reason="no int/str digit limit")
def test_int_past_the_str_digit_limit_fails_like_rpyc() -> None:
    n = 10 ** (sys.get_int_max_str_digits() + 5)
    with pytest.raises(ValueError):
        ref.dump(n)
    with pytest.raises(ValueError):
        rs.dump(n)
