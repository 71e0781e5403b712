"""Smoke tests: the extension imports, and the shared server fixture works."""

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
