"""README's Python examples print the same with and without rpyc-rs.

The ```python blocks are read from README.md itself (nothing here copies
them) and sorted into three kinds:

- *not run*: preceded by ``<!-- not run -->`` (an HTML comment, invisible on
  GitHub) on the line before the fence, blank lines allowed between. They
  are counted: ``EXPECTED_NOT_RUN`` must match, so none is skipped silently.
- *server*: a block that imports ``rpyc.utils.server`` and calls
  ``.start()``. It is started as a script (stock: ``python server.py``;
  rpyc-rs: ``python -m rpyc_rs server.py``) and killed when done.
- *client*: every other block. It runs against the nearest server block
  above it, once stock and once under ``python -m rpyc_rs``, and its stdout
  must be exactly the ```text block that follows it in README (the next
  fenced block), which must have at least ``MIN_OUTPUT_LINES`` lines.

Each client runs against a stock server and against an rpyc-rs server, so
all four pairings are covered. The README's port, ``18861``, is replaced by
a free port on 127.0.0.1 in every run block. A ``sitecustomize`` on
``PYTHONPATH`` records the class of every ``Connection`` each process
creates, which proves the run used the engine it was meant to.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple

import pytest

from conftest import HOST, free_port

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(REPO, "README.md")

NOT_RUN_MARK = "<!-- not run -->"
#: How many ```python blocks README marks ``<!-- not run -->``; update it
#: together with README.
EXPECTED_NOT_RUN = 1
PLACEHOLDER_PORT = "18861"
PYTHON_LANGS = {"python", "py", "python3"}
MIN_OUTPUT_LINES = 3

CLIENT_TIMEOUT = 30.0
SERVER_START_TIMEOUT = 30.0

STOCK_CONN = "rpyc.core.protocol.Connection"
FAST_CONN = "rpyc_rs._connection.Connection"


# --------------------------------------------------------------------------
# reading README


@dataclass
class Fence:
    line: int  # 1-based line of the opening fence
    lang: str  # the info string's first word, lower case ("" if none)
    code: str
    not_run: bool  # NOT_RUN_MARK right before it


@dataclass
class Block:
    fence: Fence
    kind: str  # "server", "client" or "not run"
    server: Optional[Fence] = None  # for a client: the server it needs
    expected: Optional[str] = None  # for a client: its output block

    @property
    def id(self) -> str:
        return f"README-line{self.fence.line}"


_FENCE = re.compile(r"^(`{3,}|~{3,})\s*([^\s`]*)")


def read_fences(text: str) -> List[Fence]:
    """Every fenced code block of a Markdown text, in order."""
    lines = text.splitlines()
    fences: List[Fence] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        marker, info = m.group(1), m.group(2)
        lang = re.split(r"[,{]", info, maxsplit=1)[0].lower()
        start = i
        prev = i - 1
        while prev >= 0 and not lines[prev].strip():
            prev -= 1
        not_run = prev >= 0 and lines[prev].strip() == NOT_RUN_MARK
        body: List[str] = []
        i += 1
        while i < len(lines):
            line = lines[i]
            if line.startswith(marker[0] * len(marker)) and not line.strip(marker[0]).strip():
                break
            body.append(line)
            i += 1
        else:
            raise AssertionError(f"README.md:{start + 1}: code block never closed")
        fences.append(Fence(start + 1, lang, "\n".join(body) + "\n", not_run))
        i += 1
    return fences


def is_server(code: str) -> bool:
    return "rpyc.utils.server" in code and ".start()" in code


def classify(fences: List[Fence]) -> Tuple[List[Block], List[str]]:
    """The README's Python blocks, and the problems found on the way (each
    one fails ``test_readme_python_blocks_are_accounted_for``)."""
    blocks: List[Block] = []
    problems: List[str] = []
    server: Optional[Fence] = None
    for n, f in enumerate(fences):
        if f.lang.startswith("py") and f.lang not in PYTHON_LANGS:
            problems.append(f"README.md:{f.line}: ```{f.lang} block: use ```python (or mark the language otherwise)")
        if f.lang not in PYTHON_LANGS:
            continue
        if f.not_run:
            blocks.append(Block(f, "not run"))
            continue
        if PLACEHOLDER_PORT not in f.code:
            problems.append(f"README.md:{f.line}: a run block must use port {PLACEHOLDER_PORT}")
        if is_server(f.code):
            server = f
            blocks.append(Block(f, "server"))
            continue
        block = Block(f, "client", server=server)
        if server is None:
            problems.append(f"README.md:{f.line}: client block with no server block above it")
        nxt = fences[n + 1] if n + 1 < len(fences) else None
        if nxt is None or nxt.lang != "text":
            problems.append(f"README.md:{f.line}: a client block must be followed by a ```text block with its output")
        else:
            block.expected = nxt.code
            if len([ln for ln in nxt.code.splitlines() if ln.strip()]) < MIN_OUTPUT_LINES:
                problems.append(f"README.md:{nxt.line}: expected output has fewer than {MIN_OUTPUT_LINES} lines")
        blocks.append(block)
    return blocks, problems


def readme_blocks() -> Tuple[List[Block], List[str]]:
    with open(README, encoding="utf-8") as fh:
        return classify(read_fences(fh.read()))


BLOCKS, PROBLEMS = readme_blocks()
CLIENTS = [b for b in BLOCKS if b.kind == "client" and b.server is not None and b.expected is not None]


# --------------------------------------------------------------------------
# running blocks

# Records, in the file named by RPYC_RS_README_PROBE, the class of every
# rpyc Connection the process creates (rpyc_rs.Connection calls rpyc's
# __init__). It patches rpyc.core.protocol when the program imports it,
# without importing anything early.
_SITECUSTOMIZE = r'''
import os, sys

_PROBE = os.environ.get("RPYC_RS_README_PROBE")

if _PROBE:
    import importlib.abc
    import importlib.machinery

    def _patch(cls):
        init = cls.__init__

        def __init__(self, *args, **kwargs):
            with open(_PROBE, "a") as fh:
                fh.write(f"{type(self).__module__}.{type(self).__qualname__}\n")
            init(self, *args, **kwargs)

        cls.__init__ = __init__

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "rpyc.core.protocol":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def patched(module):
                exec_module(module)
                _patch(module.Connection)

            spec.loader.exec_module = patched
            return spec

    sys.meta_path.insert(0, _Finder())
'''


def _set_pdeathsig() -> None:  # pragma: no cover (runs in the child)
    """Linux: the server dies with the test process, even on SIGKILL."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Runner:
    """Writes blocks to scripts in a temporary directory and runs them."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        sitedir = os.path.join(tmp, "site")
        os.makedirs(sitedir)
        with open(os.path.join(sitedir, "sitecustomize.py"), "w") as fh:
            fh.write(_SITECUSTOMIZE)
        pythonpath = [sitedir] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath), PYTHONUNBUFFERED="1",
                        PYTHONDONTWRITEBYTECODE="1")
        self.env.pop("RPYC_RS_README_PROBE", None)
        self._n = 0

    def script(self, fence: Fence, port: int, name: str) -> Tuple[str, str]:
        """(script path, probe path) for ``fence`` with its port replaced."""
        self._n += 1
        path = os.path.join(self.tmp, f"{self._n}-{name}.py")
        with open(path, "w") as fh:
            fh.write(fence.code.replace(PLACEHOLDER_PORT, str(port)))
        return path, path + ".conns"

    def cmd(self, path: str, fast: bool) -> List[str]:
        return [sys.executable, "-m", "rpyc_rs", path] if fast else [sys.executable, path]

    def env_for(self, probe: str) -> dict:
        return dict(self.env, RPYC_RS_README_PROBE=probe)

    @contextlib.contextmanager
    def server(self, fence: Fence, fast: bool) -> Iterator[Tuple[int, str]]:
        """Starts the server block; yields (port, probe path) once it listens."""
        for attempt in range(3):
            port = free_port()
            path, probe = self.script(fence, port, "server-fast" if fast else "server-stock")
            err = tempfile.TemporaryFile(dir=self.tmp)
            proc = subprocess.Popen(self.cmd(path, fast), cwd=self.tmp, env=self.env_for(probe),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    preexec_fn=_set_pdeathsig if sys.platform.startswith("linux") else None)
            try:
                if self._wait_listening(proc, port):
                    yield port, probe
                    return
                err.seek(0)
                text = err.read().decode("utf-8", "replace")
                if "Address already in use" in text and attempt < 2:
                    continue  # someone took the free port first
                raise AssertionError(f"README.md:{fence.line}: server exited ({proc.returncode}):\n{text}")
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)
                err.close()
        raise AssertionError("unreachable")

    @staticmethod
    def _wait_listening(proc: subprocess.Popen, port: int) -> bool:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while proc.poll() is None:
            try:
                with socket.create_connection((HOST, port), timeout=1.0):
                    return True
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"server not listening on {HOST}:{port} after {SERVER_START_TIMEOUT}s")
                time.sleep(0.05)
        return False

    def client(self, fence: Fence, port: int, fast: bool) -> Tuple[subprocess.CompletedProcess, str]:
        path, probe = self.script(fence, port, "client-fast" if fast else "client-stock")
        try:
            proc = subprocess.run(self.cmd(path, fast), cwd=self.tmp, env=self.env_for(probe),
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"README.md:{fence.line}: client ran longer than {CLIENT_TIMEOUT}s "
                                 f"(fast={fast})\nstdout: {exc.stdout!r}\nstderr: {exc.stderr!r}") from None
        return proc, probe


def connection_classes(probe: str) -> set:
    if not os.path.exists(probe):
        return set()
    with open(probe) as fh:
        return {line.strip() for line in fh if line.strip()}


# --------------------------------------------------------------------------
# tests


def test_readme_python_blocks_are_accounted_for():
    assert not PROBLEMS, "\n".join(PROBLEMS)
    kinds = [b.kind for b in BLOCKS]
    assert kinds.count("not run") == EXPECTED_NOT_RUN, (
        f"README marks {kinds.count('not run')} python block(s) {NOT_RUN_MARK}, "
        f"expected {EXPECTED_NOT_RUN}: {[b.id for b in BLOCKS if b.kind == 'not run']}")
    assert kinds.count("client") >= 1 and kinds.count("server") >= 1, kinds
    # every block is either run (a client, or a server some client uses) or counted above
    used_servers = {b.server.line for b in CLIENTS}
    unused = [b.id for b in BLOCKS if b.kind == "server" and b.fence.line not in used_servers]
    assert not unused, f"server blocks no client block runs against: {unused}"
    assert len(CLIENTS) == kinds.count("client")


def test_fence_reader_sees_markers_and_languages():
    text = "\n".join([
        "```rust,no_run", "fn main() {}", "```",
        NOT_RUN_MARK, "", "```python", "print(1)", "```",
        "````pycon", ">>> x = '```'", "````",
        "```text", "1", "```",
    ])
    fences = read_fences(text)
    assert [(f.lang, f.not_run, f.code) for f in fences] == [
        ("rust", False, "fn main() {}\n"),
        ("python", True, "print(1)\n"),
        ("pycon", False, ">>> x = '```'\n"),
        ("text", False, "1\n"),
    ]
    blocks, problems = classify(fences)
    assert [b.kind for b in blocks] == ["not run"]
    assert len(problems) == 1 and "```pycon block" in problems[0]


@pytest.mark.parametrize("server_fast", [False, True], ids=["stock-server", "fast-server"])
@pytest.mark.parametrize("block", CLIENTS, ids=[b.id for b in CLIENTS])
def test_readme_client_prints_the_same_with_and_without_install(block: Block, server_fast: bool):
    with tempfile.TemporaryDirectory(prefix="rpyc-rs-readme-") as tmp:
        runner = Runner(tmp)
        with runner.server(block.server, server_fast) as (port, server_probe):
            stock, stock_probe = runner.client(block.fence, port, fast=False)
            fast, fast_probe = runner.client(block.fence, port, fast=True)
        where = f"README.md:{block.fence.line} against a {'rpyc-rs' if server_fast else 'stock'} server"
        for name, proc in (("stock", stock), ("rpyc_rs", fast)):
            assert proc.returncode == 0, (
                f"{where}, {name} client exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout.decode()}\nstderr:\n{proc.stderr.decode()}")
        assert fast.stdout.decode() == stock.stdout.decode(), f"{where}: stdout differs with install()"
        assert fast.stderr.decode() == stock.stderr.decode(), f"{where}: stderr differs with install()"
        assert stock.stdout.decode() == block.expected, f"{where}: stdout is not README's output block"
        # each process ran on the engine it was meant to
        assert connection_classes(stock_probe) == {STOCK_CONN}
        assert connection_classes(fast_probe) == {FAST_CONN}
        assert connection_classes(server_probe) == {FAST_CONN if server_fast else STOCK_CONN}
