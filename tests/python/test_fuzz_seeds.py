"""Replays the python_brine fuzz corpus (fuzz/seeds/python_brine and any
fuzz/regressions/python_brine) through the extension's brine, as the
libFuzzer target does in an embedded interpreter: what loads must dump,
and the dump must load again."""

from pathlib import Path

import pytest

import rpyc_rs.brine as rbrine

ROOT = Path(__file__).resolve().parents[2] / "fuzz"
CASES = sorted(p for d in ("seeds", "regressions") for p in (ROOT / d / "python_brine").glob("*") if p.is_file())


def test_the_corpus_is_there():
    assert CASES, "no python_brine corpus"


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_python_brine_seed(path):
    data = path.read_bytes()
    try:
        obj = rbrine.load(data)
    except (ValueError, TypeError):
        return
    once = rbrine.dump(obj)
    again = rbrine.load(once)
    assert len(rbrine.dump(again)) == len(once)
