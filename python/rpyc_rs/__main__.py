"""``python -m rpyc_rs PROGRAM.py [ARGS...]``: run an unmodified rpyc program
on the Rust engine.

It calls :func:`rpyc_rs.install` and then runs the program as ``__main__``
(with ``sys.argv`` set as if it had been started directly), so every
connection the program's rpyc creates uses rpyc-rs. ``-m MODULE`` runs a
module instead of a file, as ``python -m`` does.
"""

import builtins
import importlib.machinery
import io
import os
import runpy
import sys
import types
from typing import List, Optional

import rpyc_rs

USAGE = "usage: python -m rpyc_rs PROGRAM.py [ARGS...]  |  python -m rpyc_rs -m MODULE [ARGS...]"


def _run_program(path: str) -> None:
    """Runs a program file as ``python PROGRAM.py`` would: in a fresh
    ``__main__`` module, with ``__file__`` as Python sets it (absolute from
    3.9 on), ``sys.argv[0]`` as given, and the program's own directory
    first on ``sys.path`` (so the modules beside it import)."""
    full = os.path.abspath(path)
    # Python 3.9 made a script's __file__ (and its code's file name)
    # absolute; 3.8 keeps the path as given.
    name = full if sys.version_info >= (3, 9) else path
    with io.open_code(full) as f:
        code = compile(f.read(), name, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__file__ = name
    setattr(main, "__builtins__", builtins)  # as the interpreter sets it for __main__
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", full)
    sys.modules["__main__"] = main
    sys.path[0] = os.path.dirname(full)
    exec(code, vars(main))


def main(argv: Optional[List[str]] = None) -> int:
    """Runs the program named in ``argv`` (default: ``sys.argv[1:]``) under
    :func:`rpyc_rs.install`; returns the exit status for a usage error, else 0."""
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
    elif os.path.isfile(argv[0]):
        sys.argv = argv
        _run_program(argv[0])
    else:
        # A directory or zip file with a __main__.py: runpy's job.
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
