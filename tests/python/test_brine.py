"""``rpyc_rs.brine`` on its own: the API contract and hostile input.

Malformed data must raise ``BrineError`` (a ``ValueError``) with a message
that says what is wrong, never crash the interpreter, hang, allocate what a
length field claims, or raise something else. These tests need no rpyc;
``test_brine_conformance.py`` compares against rpyc itself.
"""

from __future__ import annotations

import array
import random
import struct
import sys
from typing import Any

import pytest

from rpyc_rs import brine
from rpyc_rs.brine import BrineError

# --------------------------------------------------------------------------
# API


def test_brine_error_is_a_value_error() -> None:
    assert issubclass(BrineError, ValueError)
    assert BrineError.__module__ == "rpyc_rs._native"


def test_round_trip_of_every_type() -> None:
    v = (None, NotImplemented, Ellipsis, True, False, -48, 159, 160, -49, 2**64, -(10**50), 1.5,
         complex(1, -2), b"", b"abcd", b"x" * 300, "", "héllo 🌍", (), frozenset([1, "a"]), slice(1, None, -1))
    out = brine.load(brine.dump(v))
    assert out == v
    assert [type(x) for x in out] == [type(x) for x in v]


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, lambda b: array.array("B", b)],
                         ids=["bytes", "bytearray", "memoryview", "array"])
def test_load_accepts_bytes_like(wrap: Any) -> None:
    data = brine.dump((1, "two", b"three"))
    assert brine.load(wrap(data)) == (1, "two", b"three")


def test_load_accepts_a_non_contiguous_buffer() -> None:
    data = brine.dump((1, 2))
    spread = bytes(b for c in data for b in (c, 0))
    assert brine.load(memoryview(spread)[::2]) == (1, 2)


@pytest.mark.parametrize("bad", ["text", 5, None, [0]], ids=["str", "int", "None", "list"])
def test_load_refuses_non_buffers(bad: Any) -> None:
    with pytest.raises(TypeError):
        brine.load(bad)


def test_load_of_a_bytearray_mutated_afterwards_is_unaffected() -> None:
    data = bytearray(brine.dump(("abc", (1, 2))))
    v = brine.load(data)
    data[:] = b"\xff" * len(data)
    assert v == ("abc", (1, 2))


def test_undumpable_raises_type_error_with_rpycs_message() -> None:
    with pytest.raises(TypeError, match=r"^cannot dump \[1\]$"):
        brine.dump((1, [1]))
    assert brine.dumpable((1, [1])) is False


def test_undumpable_with_a_broken_str() -> None:
    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    with pytest.raises(TypeError, match="cannot dump <unprintable Broken object>"):
        brine.dump(Broken())


def _chain(levels: int, leaf: Any = None) -> Any:
    """``levels`` tuples nested in one another around ``leaf``."""
    v = leaf
    for _ in range(levels):
        v = (v,)
    return v


def test_dump_depth_limit_matches_load_depth_limit() -> None:
    ok = _chain(512)
    assert brine.dumpable(ok)
    assert brine.load(brine.dump(ok)) == ok
    too_deep = _chain(513)
    assert brine.dumpable(too_deep) is False
    with pytest.raises(BrineError, match="nested deeper than 512"):
        brine.dump(too_deep)
    with pytest.raises(BrineError, match="nested deeper than 512"):
        brine.load(b"\x10" * 513 + b"\x00")


def test_frozenset_and_slice_count_as_levels() -> None:
    v: Any = None
    for _ in range(150):  # 300 levels
        v = (frozenset([v]),)
    for _ in range(212):  # slices outside (unhashable before 3.12, so not inside a frozenset)
        v = slice(v)
    assert brine.dumpable(v)  # 512 levels
    assert brine.load(brine.dump(v)) == v
    v = slice(v)  # 513
    assert brine.dumpable(v) is False
    with pytest.raises(BrineError):
        brine.dump(v)


def test_dump_returns_bytes_and_reuses_nothing_visible() -> None:
    a = brine.dump((1, "a"))
    b = brine.dump((2, "b"))
    assert type(a) is bytes and a == b"\x11\x51\x08\x0aa"
    assert b == b"\x11\x52\x08\x0ab"


def test_huge_value_is_not_kept_but_still_correct() -> None:
    big = b"x" * (3 << 20)
    assert brine.load(brine.dump(big)) == big
    assert brine.dump(1) == b"\x51"


@pytest.mark.parametrize("text", [
    "", "a", "\x7f", "\x80", "\xff", "a\xff", "\u0100", "\xff\u0100", "\uffff", "\ue000",
    "\U00010000", "\uffff\U00010000", "\U0010ffff", "é" * 300, "€" * 300, "🌍" * 300,
    "mixed: a é € 🌍 \x00 end",
])
def test_loaded_str_is_a_normal_str(text: str) -> None:
    # Loading builds strs in place; they must be indistinguishable from
    # strs Python builds (same kind and size, equal, same hash).
    out = brine.load(brine.dump(text))
    assert type(out) is str
    assert out == text and hash(out) == hash(text)
    # (CPython compares the storage kind before the characters, so the
    # equality above already fails for a str built with the wrong kind.)
    if len(text) > 1:  # (shorter ones may be shared singletons)
        assert sys.getsizeof(out) == sys.getsizeof(text.encode("utf-8").decode("utf-8"))
    assert out.encode("utf-8") == text.encode("utf-8")
    assert {out: 1}[text] == 1


def test_dump_leaves_no_utf8_cache_in_the_str() -> None:
    # Borrowing a non-ASCII str's UTF-8 would make CPython keep a copy in it.
    text = "é€🌍" * 1000 + str(id(object()))
    before = sys.getsizeof(text)
    brine.dump(text)
    brine.dump((text,))
    assert sys.getsizeof(text) == before


def test_int_text_forms_python_accepts() -> None:
    # rpyc writes str(n); like int() we also take a sign and surrounding
    # whitespace, on both the i64 and the big-int paths.
    assert brine.load(b"\x16\x05 +12 ") == 12
    big = b" -123456789012345678901234567890 "
    assert brine.load(b"\x16" + bytes([len(big)]) + big) == -123456789012345678901234567890
    huge = b"+" + b"9" * 60
    assert brine.load(b"\x16" + bytes([len(huge)]) + huge) == int("9" * 60)


def test_frozenset_members_and_duplicates() -> None:
    # A peer may send duplicates; they collapse as in frozenset(...).
    assert brine.load(b"\x1a\x13\x51\x51\x52\x03") == frozenset([1, 2, True])
    assert brine.load(b"\x1a\x02") == frozenset()


# --------------------------------------------------------------------------
# hostile input


HOSTILE = {
    # truncation
    "empty": b"",
    "truncated bytes": b"\x0e\x05abc",
    "truncated bytes1": b"\x0a",
    "truncated float": b"\x18\x00\x00",
    "truncated complex": b"\x1b" + b"\x00" * 12,
    "truncated tuple": b"\x13\x51\x52",
    "truncated tuple L1": b"\x14\x05",
    "truncated int": b"\x16\x03" + b"12",
    "truncated length": b"\x0f\x00\x00",
    "truncated str": b"\x08",
    "truncated slice": b"\x19",
    "truncated frozenset": b"\x1a",
    # invalid tags
    **{f"tag 0x{t:02x}": bytes([t]) for t in [0x07, 0x09, 0x1C, 0x1D, 0x1E, 0x1F, 0xF0, 0xFF]},
    "invalid tag inside a tuple": b"\x12\x00\x07",
    # lengths that the data cannot back
    "4 GiB bytes": b"\x0f\xff\xff\xff\xff",
    "4 GiB str": b"\x08\x0f\xff\xff\xff\xff" + b"a" * 10,
    "4 GiB tuple": b"\x15\xff\xff\xff\xff" + b"\x00" * 10,
    "4 GiB int": b"\x17\xff\xff\xff\xff" + b"1" * 10,
    "4 GiB frozenset": b"\x1a\x15\xff\xff\xff\xff\x00",
    "255 bytes claimed, 3 present": b"\x0e\xff" + b"abc",
    # nesting
    "depth 100000 tuple chain": b"\x10" * 100_000 + b"\x00",
    "depth 100000 L4 tuple chain": b"\x15\x00\x00\x00\x01" * 100_000 + b"\x00",
    "depth 100000 frozenset chain": b"\x1a\x10" * 100_000 + b"\x00",
    "depth 100000 slice chain": b"\x19\x12" * 100_000 + b"\x00\x00\x00",
    # text
    "invalid UTF-8": b"\x08\x0a\xff",
    "truncated UTF-8 sequence": b"\x08\x0b\xc3\x28",
    "UTF-8 encoded surrogate": b"\x08\x0c\xed\xa0\x80",
    "overlong UTF-8": b"\x08\x0b\xc0\x80",
    "str tag before a non-bytes value": b"\x08\x51",
    "str tag before a tuple": b"\x08\x02",
    # ints
    "int text with letters": b"\x16\x03abc",
    "int text sign only": b"\x16\x01-",
    "empty int text": b"\x16\x00",
    "int text with underscore": b"\x16\x031_0",
    "int text with a dot": b"\x16\x031.5",
    "int text non-ASCII digits": b"\x16\x02\xd9\xa1",
    # compounds of the wrong shape
    "slice before a 2-tuple": b"\x19\x11\x00\x00",
    "slice before None": b"\x19\x00",
    "frozenset before an int": b"\x1a\x51",
    # a complete value followed by more bytes
    "trailing byte": b"\x00\x00",
    "trailing garbage after a tuple": b"\x11\x51\x52\xff\xff",
}


@pytest.mark.parametrize("data", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_input_raises_brine_error(data: bytes) -> None:
    with pytest.raises(BrineError) as info:
        brine.load(data)
    assert str(info.value)  # says what is wrong
    assert isinstance(info.value, ValueError)


def test_error_messages_name_the_problem() -> None:
    cases = [
        (b"\x07", "invalid brine tag 0x07 at offset 0"),
        (b"\x0f\xff\xff\xff\xff", "claims 4294967295"),
        (b"\x08\x0a\xff", "not valid UTF-8"),
        (b"\x00\x00", "trailing"),
        (b"", "truncated"),
    ]
    for data, text in cases:
        with pytest.raises(BrineError, match=text):
            brine.load(data)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="slices are hashable from Python 3.12")
def test_unhashable_frozenset_member_is_malformed() -> None:
    data = b"\x1a\x10\x19\x12\x00\x00\x00"  # frozenset((slice(None, None, None),))
    with pytest.raises(BrineError, match="cannot be hashed") as info:
        brine.load(data)
    assert isinstance(info.value.__cause__, TypeError)


@pytest.mark.skipif(not hasattr(sys, "get_int_max_str_digits"), reason="no int/str digit limit")
def test_int_past_the_digit_limit_is_malformed() -> None:
    # Refused by the decoder, before any conversion work (issue 14: CPU
    # follows bytes), at the interpreter's own limit.
    digits = b"7" * (sys.get_int_max_str_digits() + 1)
    data = b"\x17" + struct.pack(">L", len(digits)) + digits
    with pytest.raises(BrineError, match="more than the limit"):
        brine.load(data)


@pytest.mark.skipif(not hasattr(sys, "get_int_max_str_digits"), reason="no int/str digit limit")
def test_the_digit_limit_follows_sys_set_int_max_str_digits() -> None:
    before = sys.get_int_max_str_digits()
    digits = b"7" * 5000
    data = b"\x17" + struct.pack(">L", len(digits)) + digits
    try:
        sys.set_int_max_str_digits(6000)
        assert brine.load(data) == int(digits)
        sys.set_int_max_str_digits(0)  # no limit, as in Python
        assert brine.load(data) == int(digits)
        sys.set_int_max_str_digits(4999)
        with pytest.raises(BrineError, match="more than the limit"):
            brine.load(data)
    finally:
        sys.set_int_max_str_digits(before)


def test_random_corruption_never_escapes_brine_error() -> None:
    rng = random.Random(20241123)
    samples = [
        brine.dump(v)
        for v in [
            (1, "two", 3.0, b"four", (5, (6, 7)), frozenset([8, 9]), slice(1, 2, 3), 2**80, 1j),
            tuple(range(300)),
            ("é" * 200, b"x" * 300, -(10**40)),
        ]
    ]
    outcomes = {"ok": 0, "error": 0}
    for _ in range(3000):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            if op == 0 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op == 1 and data:
                del data[rng.randrange(len(data)):]
            elif op == 2:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
            elif data:
                i = rng.randrange(len(data))
                data[i:i + 4] = rng.getrandbits(32).to_bytes(4, "big")
        try:
            brine.load(bytes(data))
            outcomes["ok"] += 1
        except BrineError:
            outcomes["error"] += 1
    assert outcomes["error"] > 0
