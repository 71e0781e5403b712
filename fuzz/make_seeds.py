"""Writes the fuzzers' seed corpus (fuzz/seeds/<target>/) from stock rpyc.

Each seed is what a real rpyc peer produces: brine dumps of assorted
values, whole frames (raw and zlib-compressed) from rpyc's Channel, and
request payloads from rpyc's own Connection._send for the dispatch
target (each prefixed by its 2-byte length, as that target reads them).
Run with a Python that has rpyc installed:

    .venv/bin/python fuzz/make_seeds.py
"""

import hashlib
import os
import struct
import sys

import rpyc
from rpyc.core import brine, consts
from rpyc.core.channel import Channel

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")

VALUES = [
    None, True, False, 0, -48, 159, 160, 2**63 - 1, -(2**63), 2**64 + 5, 10**200, 1.5, float("nan"),
    complex(1, -2), b"", b"x", b"abcd", b"hello world", "", "hi", "\u00e9\u4e2d\U0001f600", (), (1,), (1, 2, 3, 4),
    tuple(range(300)), ((((),),),), slice(1, None, -1), frozenset([1, "a", b"b"]), NotImplemented, Ellipsis,
    ("a" * 3000, b"z" * 7000),
]


def save(target, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


class Sink:
    """A stream that keeps what rpyc's Channel writes."""

    def __init__(self):
        self.data = b""

    def write(self, data):
        self.data += bytes(data)

    def close(self):
        pass

    closed = False
    MAX_IO_CHUNK = 64000


def frames(payloads, compress):
    sink = Sink()
    ch = Channel(sink, compress=compress)
    for p in payloads:
        ch.send(p)
    return sink.data


def main():
    for v in VALUES:
        save("brine_decode", brine.dump(v))
        save("python_brine", brine.dump(v))
    small = [brine.dump(v) for v in VALUES[:8]]
    save("frame_reader", frames(small, compress=True))
    save("frame_reader", frames([brine.dump(VALUES[-1])], compress=True))
    save("frame_reader", frames([b"x" * 5000, b"y"], compress=False))

    sent = []

    class Recorder(rpyc.Connection):
        def _send(self, msg, seq, args):
            sent.append(brine.I1.pack(msg) + brine.dump((seq, args)))

    class Chan:
        compress = True

        def close(self):
            pass

        def fileno(self):
            return -1

    conn = Recorder(rpyc.VoidService(), Chan(), config={})
    root_id = ("rpyc_rs.DemoService", 1, 1)
    requests = [
        (consts.HANDLE_GETROOT, ()),
        (consts.HANDLE_PING, b"ping"),
        (consts.HANDLE_GETATTR, (root_id, "echo")),
        (consts.HANDLE_CALLATTR, (root_id, "echo", (1, "a"), ())),
        (consts.HANDLE_CALLATTR, (root_id, "add", (2, 3), (("b", 1),))),
        (consts.HANDLE_CALLATTR, (root_id, "items", (5,), ())),
        (consts.HANDLE_CALLATTR, (root_id, "thing", (), ())),
        (consts.HANDLE_REPR, (root_id,)),
        (consts.HANDLE_STR, (root_id,)),
        (consts.HANDLE_HASH, (root_id,)),
        (consts.HANDLE_DIR, (root_id,)),
        (consts.HANDLE_INSPECT, (root_id,)),
        (consts.HANDLE_CMP, (root_id, 1, "__eq__")),
        (consts.HANDLE_DEL, (root_id, 1)),
        (consts.HANDLE_GETATTR, (root_id, "__doc__")),
        (consts.HANDLE_CLOSE, ()),
    ]
    for i, (handler, args) in enumerate(requests):
        conn._send(consts.MSG_REQUEST, i + 1, (handler, args))
    conn._send(consts.MSG_REPLY, 99, None)
    conn._send(consts.MSG_EXCEPTION, 98, ("builtins", "ValueError", ("x",), (), ""))

    def framed(payloads):
        return b"".join(struct.pack("!H", len(p)) + p for p in payloads)

    save("dispatch", framed(sent[:1] + sent[3:6]))
    for p in sent:
        save("dispatch", framed([p]))
    save("dispatch", framed(sent))
    conn._closed = True  # nothing to tell: the channel is a recorder
    print(f"seeds written under {ROOT}", file=sys.stderr)


if __name__ == "__main__":
    main()
