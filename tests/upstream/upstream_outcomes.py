"""pytest plugin: record each test's outcome as it happens, for ci/upstream.

Loaded in both passes (stock rpyc and rpyc_rs installed). It appends lines to
the file named by ``RPYC_UPSTREAM_OUTCOMES`` and flushes each one, so that a
run stopped by ci/upstream's whole-run time limit still says which tests
finished and which one was running:

    collected<TAB>ID
    start<TAB>ID
    result<TAB>ID<TAB>OUTCOME<TAB>ONE-LINE REASON
    collect-error<TAB>PATH<TAB>ONE-LINE REASON

ID is the test's pytest node id made relative to ``RPYC_UPSTREAM_TESTS`` (the
rpyc tests folder), e.g. ``test_async.py::TestAsync::test_timed``, so ids do
not depend on where the checkout lives. OUTCOME is one of passed, failed
(the test body), error (setup or teardown), skipped.
"""

import os
import threading

_lock = threading.Lock()
_file = None
_state = {}


def _out(*fields):
    if _file is None:
        return
    line = "\t".join(str(f).replace("\t", " ").replace("\n", " ") for f in fields)
    with _lock:
        _file.write(line + "\n")
        _file.flush()


def _test_id(nodeid, fspath):
    base = os.environ.get("RPYC_UPSTREAM_TESTS")
    rest = nodeid.split("::", 1)[1] if "::" in nodeid else ""
    if base and fspath:
        rel = os.path.relpath(str(fspath), base).replace(os.sep, "/")
    else:
        rel = nodeid.split("::", 1)[0]
    return f"{rel}::{rest}" if rest else rel


def _reason(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message.splitlines()[0][:300] if crash.message else ""
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:  # skip
        return str(report.longrepr[2])[:300]
    return str(report.longrepr or "").strip().splitlines()[-1][:300] if report.longrepr else ""


def pytest_configure(config):
    global _file
    path = os.environ.get("RPYC_UPSTREAM_OUTCOMES")
    if path:
        _file = open(path, "a", encoding="utf-8")


def pytest_unconfigure(config):
    global _file
    if _file is not None:
        _file.close()
        _file = None


def pytest_collectreport(report):
    if report.failed:
        _out("collect-error", _test_id(report.nodeid, report.fspath), _reason(report))


def pytest_collection_finish(session):
    for item in session.items:
        _out("collected", _test_id(item.nodeid, item.path))


def pytest_runtest_logstart(nodeid, location):
    _state[nodeid] = ("passed", "")


def pytest_runtest_logreport(report):
    outcome, reason = _state.get(report.nodeid, ("passed", ""))
    if outcome != "passed":  # keep the first problem (a teardown error after a failure is noise)
        return
    if report.failed:
        outcome = "failed" if report.when == "call" else "error"
        reason = f"{report.when}: {_reason(report)}" if report.when != "call" else _reason(report)
    elif report.skipped:
        outcome, reason = "skipped", _reason(report)
    _state[report.nodeid] = (outcome, reason)


def pytest_runtest_protocol(item, nextitem):
    _out("start", _test_id(item.nodeid, item.path))
    # None: let pytest run the test as usual.


def pytest_runtest_logfinish(nodeid, location):
    outcome, reason = _state.pop(nodeid, ("passed", ""))
    item_id = _ids.get(nodeid, nodeid)
    _out("result", item_id, outcome, reason)


_ids = {}


def pytest_itemcollected(item):
    _ids[item.nodeid] = _test_id(item.nodeid, item.path)
