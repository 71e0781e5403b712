"""What rpyc's own test suite found (``ci/upstream`` runs it against
``rpyc_rs.install()``), kept as regression tests that need no copy of it.

Each scenario (``peers/edge_scenarios.py``) runs in a fresh interpreter,
stock and on rpyc-rs, and both must behave alike:

- ``AsyncResult.wait()`` while another thread serves the connection
  (upstream ``test_race``): the engine once let the waiter take the reader
  role while the serving thread was still delivering the reply it waited
  for, and the wait then lasted until its expiry.
- an SSL stream's ``EOFError`` (upstream ``test_ssl``): its text (the TLS
  alert, or the ssl module's EOF error) must reach the caller, not a
  generic "closed the connection".
- exiting with a daemon thread blocked serving: the process once aborted
  (SIGABRT) when that thread re-entered the finalizing interpreter.
"""

import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.interop

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "edge_scenarios.py")
ENGINES = ["stock", "rpyc_rs"]


def run(scenario, engine, *args, timeout=120):
    cmd = [sys.executable, SCRIPT, scenario, *args] + (["--rs"] if engine == "rpyc_rs" else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"exit status {proc.returncode}\n{proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["engine"] == ("rpyc_rs" if engine == "rpyc_rs" else "rpyc")
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_async_result_wait_while_another_thread_serves(engine):
    waits = run("async-wait-race", engine)["waits"]
    assert len(waits) == 30
    # Every reply arrives at once; a stalled wait lasts its 10 s expiry.
    stalled = [w for w in waits if w is None or w > 5]
    assert not stalled, f"{len(stalled)} of 30 waits stalled: {waits}"


def test_ssl_eof_keeps_the_streams_message(ssl_dir):
    # Which error the client meets depends on timing (usually the TLS alert
    # "certificate required"; an SSL EOF, a reset or a plain end when the
    # server's close wins), so the test asks that the message is the one the
    # Python stream raised, never the engine's own "<peer> closed the
    # connection" or "sending to <peer> failed", which name the peer.
    stock = run("ssl-eof", "stock", ssl_dir)["error"]
    ours = run("ssl-eof", "rpyc_rs", ssl_dir)["error"]
    assert stock, "stock rpyc connected without a client certificate"
    assert ours and not re.search(r"127\.0\.0\.1:\d+", ours), ours


@pytest.mark.parametrize("engine", ENGINES)
def test_exit_with_a_daemon_thread_blocked_serving(engine):
    for _ in range(3):
        run("daemon-exit", engine, timeout=60)
