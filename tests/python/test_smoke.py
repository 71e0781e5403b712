"""Smoke tests: the extension imports, and the shared server fixture works."""

import os
import subprocess
import sys

import pytest


def test_version_is_a_nonempty_string():
    # Imported here, not at module level, so that a broken extension fails
    # this test alone and the fixture test below still runs.
    import rpyc_rs

    assert isinstance(rpyc_rs.__version__, str)
    assert rpyc_rs.__version__


@pytest.mark.interop
def test_classic_server_fixture_serves_stock_rpyc(classic_server, rpyc_version):
    # Stock rpyc on both ends: this proves the fixture, not our code.
    import rpyc

    conn = rpyc.classic.connect("127.0.0.1", classic_server.port)
    try:
        assert conn.eval("1+1") == 2
        assert conn.modules.rpyc.__version__ == rpyc_version
    finally:
        conn.close()


def test_python_m_rpyc_rs_runs_a_program_as_python_does(tmp_path):
    # The program imports a module beside it and prints what `python
    # PROGRAM.py` would give it; run from elsewhere, by a relative path.
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "helper.py").write_text("VALUE = 42\n")
    (sub / "prog.py").write_text(
        "import sys, helper, rpyc_rs\n"
        "print(helper.VALUE, __file__, sys.argv, sys.path[0])\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    plain = subprocess.run([sys.executable, "sub/prog.py", "x"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    ours = subprocess.run([sys.executable, "-m", "rpyc_rs", "sub/prog.py", "x"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0, plain.stderr
    assert ours.returncode == 0, ours.stderr
    # Python 3.9 made a script's __file__ absolute; 3.8 keeps it as given.
    file = str(sub / "prog.py") if sys.version_info >= (3, 9) else "sub/prog.py"
    assert plain.stdout.startswith(f"42 {file} ")
    assert ours.stdout == plain.stdout
