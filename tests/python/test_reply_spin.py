"""A thread waiting for a reply polls for it a short while before it
sleeps (``src/channel/spin.rs``): the setting (``rpyc_rs_reply_spin_us`` in
the connection's config, or ``RPYC_RS_REPLY_SPIN_US``), and calls that come
back at once, later than the polling, with the peer's requests in between,
or not in time, against stock and rpyc-rs servers.
"""

from __future__ import annotations

from compat import *  # noqa: F401,F403  (the suite's imports, fixtures and helpers)

from rpyc_rs._connection import _reply_spin_us

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


@pytest.mark.parametrize("value", [0, 1, 50, 1_000_000])
def test_the_config_key_sets_the_polling(value, monkeypatch):
    monkeypatch.setenv("RPYC_RS_REPLY_SPIN_US", "7")
    assert _reply_spin_us({"rpyc_rs_reply_spin_us": value}) == value


def test_the_environment_sets_it_when_the_config_does_not(monkeypatch):
    monkeypatch.delenv("RPYC_RS_REPLY_SPIN_US", raising=False)
    assert _reply_spin_us({}) is None
    monkeypatch.setenv("RPYC_RS_REPLY_SPIN_US", " 0 ")
    assert _reply_spin_us({}) == 0
    monkeypatch.setenv("RPYC_RS_REPLY_SPIN_US", "")
    assert _reply_spin_us({}) is None


@pytest.mark.parametrize("value", [-1, 1_000_001, 1.5, "50", True, [50]])
def test_a_bad_config_value_is_refused_by_name(value):
    with pytest.raises(ValueError, match=r"config\['rpyc_rs_reply_spin_us'\] must be a whole number"):
        _reply_spin_us({"rpyc_rs_reply_spin_us": value})


@pytest.mark.parametrize("text", ["fast", "-3", "1e3", "2000000"])
def test_a_bad_environment_value_is_refused_by_name(text, monkeypatch):
    monkeypatch.setenv("RPYC_RS_REPLY_SPIN_US", text)
    with pytest.raises(ValueError, match="RPYC_RS_REPLY_SPIN_US must be a whole number"):
        _reply_spin_us({})


def test_a_bad_value_fails_the_connection_not_a_later_call(monkeypatch):
    server = spawn_server(fast=False)
    try:
        monkeypatch.setenv("RPYC_RS_REPLY_SPIN_US", "soon")
        rpyc_rs.install()
        with pytest.raises(ValueError, match="RPYC_RS_REPLY_SPIN_US"):
            rpyc.connect(server.host, server.port)
    finally:
        rpyc_rs.uninstall()
        server.stop()


@pytest.mark.parametrize("spin", [0, None, 20_000], ids=["off", "default", "20ms"])
@pytest.mark.parametrize("server_fast", [False, True], ids=["stock-server", "fast-server"])
def test_calls_whatever_the_polling(spin, server_fast):
    """Against either server: replies that come at once, later than the
    polling (more slow calls in a row than a serving loop's polling takes
    to rest), callbacks arriving while the caller polls, and a timeout kept."""
    p = Pair(client_fast=True, server_fast=server_fast)
    try:
        config = {} if spin is None else {"rpyc_rs_reply_spin_us": spin}
        conn = p.connect(p.server(), config=config)
        assert [conn.root.echo(i) for i in range(200)] == list(range(200))
        for _ in range(5):
            assert conn.root.sleep(0.03) == 0.03
        assert conn.root.echo("after the slow ones") == "after the slow ones"
        pingpong = conn.root.pingpong

        def callback(depth):
            return ["client"] + list(pingpong(callback, depth - 1))
        assert list(pingpong(callback, 6)) == ["server", "client"] * 3 + ["server"]
        conn._config["sync_request_timeout"] = 0.3
        start = time.monotonic()
        with pytest.raises(TimeoutError):
            conn.root.sleep(3)
        assert time.monotonic() - start < 2
    finally:
        p.teardown()


@pytest.mark.parametrize("server_fast", [False, True], ids=["stock-server", "fast-server"])
def test_a_slow_reply_is_polled_for_a_budget_then_slept_on(server_fast):
    """A wait for a reply polls every time but only for its budget, then
    sleeps: calls whose replies take 20 ms cost the calling thread a small
    part of that in CPU, however many come in a row (polling through the
    whole wait would cost all of it)."""
    p = Pair(client_fast=True, server_fast=server_fast)
    try:
        conn = p.connect(p.server(), config={"rpyc_rs_reply_spin_us": 2_000})
        conn.root.echo(1)
        cpu, wall = time.thread_time(), time.monotonic()
        for _ in range(20):
            assert conn.root.sleep(0.02) == 0.02
        cpu, wall = time.thread_time() - cpu, time.monotonic() - wall
        assert wall >= 0.4
        # At most 2 ms of polling per call, and two requests a call: a
        # quarter of the wall time is far above that and far below all.
        assert cpu < wall / 4, (cpu, wall)
    finally:
        p.teardown()
