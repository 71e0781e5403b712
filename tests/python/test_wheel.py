"""A clean install from the built wheel, as a user gets it: the wheel
``maturin build --release`` makes (reusing ci/setup's release build, so it
is quick) goes into a fresh venv with stock rpyc and nothing from this
checkout, and there

- ``import rpyc_rs; rpyc_rs.install()`` works,
- ``python -m rpyc_rs prog.py`` runs an unmodified rpyc program on rpyc-rs,
- the ``rpyc-rs`` command is on the venv's PATH: it talks to a stock
  server, ``-vv`` shows its log, and Ctrl-C stops ``rpyc-rs serve`` cleanly.

The venv's rpyc is the version this run tests against (6.0.2, or 5.3.1 in
ci/test's second run).
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import rpyc

from conftest import _read_line

pytestmark = [pytest.mark.interop, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
RPYC5 = int(rpyc.__version__.split(".")[0]) < 6


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, **kw)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv holding the wheel and stock rpyc; returns its bin dir."""
    tmp = tmp_path_factory.mktemp("wheel")
    maturin = Path(sys.executable).parent / "maturin"
    if not maturin.exists():
        pytest.skip("maturin is not installed beside this interpreter (run ci/setup)")
    # The interpreter and PYO3_PYTHON ci/setup builds with, so cargo finds
    # its release build up to date.
    env = dict(os.environ, PYO3_PYTHON=sys.executable)
    run([str(maturin), "build", "--release", "-i", sys.executable, "--out", str(tmp / "dist")], cwd=ROOT, env=env)
    (wheel,) = (tmp / "dist").glob("rpyc_rs-*.whl")
    run([sys.executable, "-m", "venv", str(tmp / "venv")])
    bin_dir = tmp / "venv" / "bin"
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel),
         f"rpyc=={rpyc.__version__}"])
    return bin_dir


def in_venv(venv, *args, cwd):
    # Nothing from this checkout: no PYTHONPATH, and a directory of its own.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return run([str(venv / args[0]), *args[1:]], cwd=cwd, env=env)


def test_import_and_install(venv, tmp_path):
    r = in_venv(venv, "python", "-c", textwrap.dedent("""
        import rpyc_rs
        rpyc_rs.install()
        print(rpyc_rs.installed(), rpyc_rs.__version__, rpyc_rs.__file__)
    """), cwd=tmp_path)
    installed, version, path = r.stdout.split()
    assert (installed, version) == ("rpyc_rs", rpyc_rs_version())
    assert Path(path).resolve().parts[:len(venv.parent.parts)] == venv.parent.resolve().parts, path


def test_python_m_rpyc_rs_runs_a_program(venv, tmp_path, classic_server):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent("""
        import sys
        import rpyc
        conn = rpyc.classic.connect("127.0.0.1", int(sys.argv[1]))
        print(type(conn).__module__, conn.eval("6 * 7"))
        conn.close()
    """))
    r = in_venv(venv, "python", "-m", "rpyc_rs", str(prog), str(classic_server.port), cwd=tmp_path)
    assert r.stdout.split() == ["rpyc_rs._connection", "42"], r.stdout


def test_the_rpyc_rs_command(venv, tmp_path, classic_server):
    rpyc5 = ["--rpyc5"] if RPYC5 else []
    r = in_venv(venv, "rpyc-rs", "--version", cwd=tmp_path)
    assert r.stdout.split() == ["rpyc-rs", rpyc_rs_version()]
    r = in_venv(venv, "rpyc-rs", "eval", f"127.0.0.1:{classic_server.port}", "6 * 7", *rpyc5, cwd=tmp_path)
    assert r.stdout == "42\n"
    # Exit statuses as the cargo binary's: 1 when the server raised.
    r = subprocess.run([str(venv / "rpyc-rs"), "eval", f"127.0.0.1:{classic_server.port}", "1/0", *rpyc5],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 1 and "ZeroDivisionError" in r.stderr, r.stderr


def test_ctrl_c_stops_rpyc_rs_serve(venv, tmp_path):
    # -vv: the tool's own log output (stderr), as from the cargo binary.
    proc = subprocess.Popen([str(venv / "rpyc-rs"), "-vv", "serve", "--port", "0"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = _read_line(proc, 30)
        assert first.startswith("listening on 127.0.0.1:"), first
        port = int(first.split()[2].rsplit(":", 1)[1])
        conn = rpyc.connect("127.0.0.1", port)
        assert conn.root.add(40, 2) == 42
        conn.close()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "stopped" in err
        assert "connection from 127.0.0.1:" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def rpyc_rs_version() -> str:
    """The version Cargo.toml declares (the wheel takes its own from it)."""
    import re

    text = (ROOT / "Cargo.toml").read_text()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)
