"""A real ``rpyc.core.channel.Channel`` peer for the channel interop tests and the demo.

The peer frames with rpyc's own ``Channel(SocketStream(sock))``, over TCP on
127.0.0.1 or over a Unix socket, in either role:

    --listen-tcp           bind 127.0.0.1:0, print ``PORT <port>``, accept one peer
    --connect-tcp PORT     connect to 127.0.0.1:PORT, print ``READY tcp``
    --listen-unix PATH     bind PATH, print ``READY <path>``, accept one peer
    --connect-unix PATH    connect with ``SocketStream.unix_connect``, print ``READY unix``
    --no-compress          frame with ``Channel(stream, compress=False)``

Then, for every frame it receives:

* a payload starting with ``CMD_PREFIX`` is a command:
  ``GEN <kind> <size> <seed>`` makes the peer send a frame of its own with a
  payload that the other side can regenerate (see ``generate``) and print
  ``SENT <size> <flag> <wire-len> <writes>``;
* any other payload is echoed back as a new frame.

and prints ``RECV <size> <flag> <wire-len> <crc32>`` on stdout first, where
<flag> and <wire-len> are the header fields that rpyc's ``Channel.recv``
actually read from the socket (a spy on the stream's ``read``) and <writes>
counts the socket writes rpyc's ``Channel.send`` made (it splits frames over
64000 bytes). When the other side closes the connection, rpyc raises
``EOFError``; the peer prints ``BYE <frames>`` and exits 0.

The process also exits when its stdin closes, so it never outlives its parent.
"""

import argparse
import os
import socket
import struct
import sys
import threading
import zlib

import rpyc
from rpyc.core.channel import Channel
from rpyc.core.stream import SocketStream

CMD_PREFIX = b"\xffrpyc-rs-cmd "
MASK64 = (1 << 64) - 1


def generate(kind, size, seed):
    """Payloads both languages can build: ``text`` compresses well, ``random``
    (xorshift64, 8 bytes per step, little-endian) hardly at all. The Rust
    side (tests/channel_interop.rs, examples/demo.rs) implements the same."""
    if kind == "text":
        out = bytearray()
        i = 0
        while len(out) < size:
            out += b"rpyc-rs line %08d seed %d\n" % (i, seed)
            i += 1
        return bytes(out[:size])
    if kind == "random":
        x = seed or 0x9E3779B97F4A7C15
        words = []
        for _ in range((size + 7) // 8):
            x ^= (x << 13) & MASK64
            x ^= x >> 7
            x ^= (x << 17) & MASK64
            words.append(x)
        return struct.pack("<%dQ" % len(words), *words)[:size]
    raise ValueError(f"unknown kind {kind!r}")


class SpyStream(SocketStream):
    """rpyc's SocketStream, recording what the Channel reads and writes."""

    __slots__ = ("reads", "writes")

    def __init__(self, sock):
        super().__init__(sock)
        self.reads = []
        self.writes = []

    def read(self, count):
        data = super().read(count)
        self.reads.append(data)
        return data

    def write(self, data):
        self.writes.append(bytes(data[:5]))
        return super().write(data)


def exit_when_stdin_closes():
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


def say(*words):
    print(*words, flush=True)


def connected_socket(args):
    if args.listen_tcp or args.listen_unix:
        if args.listen_tcp:
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.bind(("127.0.0.1", 0))
            lsock.listen(1)
            say("PORT", lsock.getsockname()[1])
        else:
            lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            lsock.bind(args.listen_unix)
            lsock.listen(1)
            say("READY", args.listen_unix)
        lsock.settimeout(30)
        sock, _ = lsock.accept()
        lsock.close()
        sock.settimeout(None)
        return sock
    if args.connect_tcp:
        sock = SocketStream._connect("127.0.0.1", args.connect_tcp, nodelay=True)
        sock.settimeout(None)
        say("READY", "tcp")
        return sock
    # The same factory rpyc.unix_connect uses. It leaves a 3 s socket
    # timeout, which SocketStream.read retries through but a plain sendall of
    # a large payload does not: on a loaded machine a 3 s stall of the
    # reader failed the test, so this peer waits as long as the test does.
    sock = SocketStream.unix_connect(args.connect_unix).sock
    sock.settimeout(None)
    say("READY", "unix")
    return sock


def main():
    ap = argparse.ArgumentParser()
    role = ap.add_mutually_exclusive_group(required=True)
    role.add_argument("--listen-tcp", action="store_true")
    role.add_argument("--connect-tcp", type=int)
    role.add_argument("--listen-unix")
    role.add_argument("--connect-unix")
    ap.add_argument("--no-compress", action="store_true")
    args = ap.parse_args()
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()

    stream = SpyStream(connected_socket(args))
    chan = Channel(stream, compress=not args.no_compress)
    frames = 0
    while True:
        stream.reads, stream.writes = [], []
        try:
            data = chan.recv()
        except EOFError:
            break
        frames += 1
        # Channel.recv reads the 5-byte header first, then the body.
        wire_len, flag = struct.unpack("!LB", stream.reads[0])
        say("RECV", len(data), flag, wire_len, zlib.crc32(data))
        if data.startswith(CMD_PREFIX):
            words = data[len(CMD_PREFIX):].decode().split()
            if words[0] != "GEN":
                raise SystemExit(f"unknown command {words!r}")
            payload = generate(words[1], int(words[2]), int(words[3]))
            chan.send(payload)
            # Channel.send's first write starts with the header.
            wire_len, flag = struct.unpack("!LB", stream.writes[0])
            say("SENT", len(payload), flag, wire_len, len(stream.writes))
        else:
            chan.send(data)
    say("BYE", frames)
    chan.close()
    # os._exit, not a normal return: the stdin watchdog thread is blocked
    # reading stdin, and interpreter shutdown aborts on a daemon thread that
    # holds the stdin buffer's lock.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
