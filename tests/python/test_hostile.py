"""The hostile-load suite (tests/hostile/suite.py), bounded: every attack of
issue 14 against `rpyc-rs serve` (threaded and pool) and an installed
ThreadedServer, each with a healthy client calling all along. Stock rpyc's
outcomes are recorded by the full run (`ci/hostile`) and in the README.

Needs the `rpyc-rs` binary: RPYC_RS_BIN, else the newest of
target/{debug,release}/rpyc-rs (ci/test's `cargo test` builds the debug
one first). Runs under rpyc 6.x only: the attacks are frames and brine,
the same for 5.x, and the suite is the slowest part of the Python run.
"""

import os
import sys
from pathlib import Path

import pytest
import rpyc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "hostile"))

import suite  # noqa: E402


def _binary():
    env = os.environ.get("RPYC_RS_BIN")
    if env:
        return env
    found = [p for p in (ROOT / "target" / d / "rpyc-rs" for d in ("debug", "release")) if p.exists()]
    return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None


BIN = _binary()
pytestmark = [
    pytest.mark.skipif(BIN is None, reason="no rpyc-rs binary (cargo build first)"),
    pytest.mark.skipif(int(rpyc.__version__.split(".")[0]) < 6, reason="run once, under rpyc 6.x"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

TARGETS = ["rs-threaded", "rs-pool", "installed"]


@pytest.fixture(scope="module", autouse=True)
def _setup():
    suite.ARGS_BIN = BIN
    suite.raise_fd_limit()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", list(suite.CASES))
def test_attack(case, target):
    r = suite.run_case(target, case, "quick")
    print(f"{case} {target}: {r['outcome']}")
    assert r["ok"], r
