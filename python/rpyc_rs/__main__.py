"""``python -m rpyc_rs PROGRAM.py [ARGS...]``: run an unmodified rpyc program
on the Rust engine.

It calls :func:`rpyc_rs.install` and then runs the program as ``__main__``
(with ``sys.argv`` set as if it had been started directly), so every
connection the program's rpyc creates uses rpyc-rs. ``-m MODULE`` runs a
module instead of a file, as ``python -m`` does.
"""

import runpy
import sys

import rpyc_rs

USAGE = "usage: python -m rpyc_rs PROGRAM.py [ARGS...]  |  python -m rpyc_rs -m MODULE [ARGS...]"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    rpyc_rs.install()
    if argv[0] == "-m":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
