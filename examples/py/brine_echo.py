"""Brine oracle: the real ``rpyc.core.brine`` behind a line protocol on stdin/stdout.

Used by tests/brine_interop.rs and examples/demo.rs to compare rpyc-rs's
brine codec with rpyc's own, byte for byte. One request per line, one reply
per line, in order:

    D <hex>     load the brine bytes, dump the loaded object again
    E <expr>    evaluate a Python expression (``nan``/``inf`` are defined), dump it
    Q           quit

Every reply is either

    OK <dump-hex> <repr-hex> <type-name>
    ERR <exception-type> <message-hex>

where <repr-hex> is ``repr(obj)`` as UTF-8 in hex (hex, so that any string,
newlines and all, fits on one line). The first line written is
``READY rpyc <version>`` so that the caller knows the import worked.

The process exits when stdin closes, so it never outlives its parent.
"""

import sys

import rpyc
from rpyc.core import brine

# Names that Python's repr() produces for floats but eval() does not know.
EVAL_NAMESPACE = {"nan": float("nan"), "inf": float("inf"), "__builtins__": __builtins__}


def reply(out, line):
    out.write(line.encode("ascii") + b"\n")
    out.flush()


def main():
    out = sys.stdout.buffer
    reply(out, f"READY rpyc {rpyc.__version__}")
    for raw in sys.stdin.buffer:
        line = raw.rstrip(b"\r\n").decode("utf-8")
        if not line:
            continue
        cmd, _, arg = line.partition(" ")
        if cmd == "Q":
            break
        try:
            if cmd == "D":
                obj = brine.load(bytes.fromhex(arg))
            elif cmd == "E":
                obj = eval(arg, EVAL_NAMESPACE)
            else:
                raise ValueError(f"unknown command {cmd!r}")
            dumped = brine.dump(obj)
            text = repr(obj).encode("utf-8", "surrogatepass")
            reply(out, f"OK {dumped.hex()} {text.hex()} {type(obj).__name__}")
        except Exception as exc:  # reported to the caller, who decides
            msg = str(exc).encode("utf-8", "replace").hex()
            reply(out, f"ERR {type(exc).__name__} {msg}")


if __name__ == "__main__":
    main()
