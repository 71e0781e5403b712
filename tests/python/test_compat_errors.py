"""Compatibility suite (issue 5): The attribute policy and exceptions.

rpyc programs behave the same whether ``rpyc_rs.install()`` is in effect
on either end or not: each scenario runs in the four pairings of the
``pair`` fixture (``compat.py``), and the outcome expected is the one
stock rpyc produces.
"""

from __future__ import annotations

from compat import *  # noqa: F401,F403  (the suite's imports, fixtures and helpers)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(60)]


# --------------------------------------------------------------------------
# attribute policy


def test_attribute_policy_default(pair):
    conn = pair.connect(pair.server("PolicyService"), check_server=False)
    root = conn.root
    assert root.answer == 42
    assert root.exposed_answer == 42
    for name in ("public_attr", "_private_attr", "__dict__", "_rpyc_getattr"):
        with pytest.raises(AttributeError):
            getattr(root, name)
    t = root.get_thing()
    with pytest.raises(AttributeError):
        t.value
    with pytest.raises(AttributeError):
        t.value = 5
    with pytest.raises(AttributeError):
        del t.public
    assert repr(t) == "Thing(1)"  # safe attrs stay allowed
    # a refused access is an error on that call, never a dropped connection
    assert root.answer == 42


def test_attribute_policy_public_attrs(pair):
    conn = pair.connect(pair.server("PolicyService", config={"allow_public_attrs": True}), check_server=False)
    root = conn.root
    assert root.public_attr == "public"
    with pytest.raises(AttributeError):
        root._private_attr
    t = root.get_thing()
    assert t.value == 1
    with pytest.raises(AttributeError):
        t._private
    with pytest.raises(AttributeError):
        t.value = 5  # setattr is refused unless allow_setattr
    assert t.value == 1


def test_attribute_policy_setattr_allowed(pair):
    config = {"allow_public_attrs": True, "allow_setattr": True, "allow_delattr": True}
    conn = pair.connect(pair.server("PolicyService", config=config), check_server=False)
    t = conn.root.get_thing()
    t.value = 5
    assert t.value == 5
    t.extra = [1, 2]
    assert list(t.extra) == [1, 2]
    del t.extra
    with pytest.raises(AttributeError):
        t.extra
    with pytest.raises(AttributeError):
        t._private = 1  # private names stay refused


def test_attribute_policy_all_attrs(pair):
    conn = pair.connect(pair.server("PolicyService", config={"allow_all_attrs": True}), check_server=False)
    assert conn.root._private_attr == "private"
    assert conn.root.get_thing()._private == "private"


# --------------------------------------------------------------------------
# exceptions


def test_builtin_exceptions(served):
    pair, conn = served
    with pytest.raises(KeyError) as info:
        conn.root.raise_builtin("KeyError")
    assert info.value.args[0] == "missing"
    text = str(info.value)
    assert "Remote Traceback" in text and "exposed_raise_builtin" in text
    with pytest.raises(ValueError, match="bad value"):
        conn.root.raise_builtin("ValueError")
    with pytest.raises(ZeroDivisionError) as info:
        conn.root.raise_builtin("ZeroDivisionError")
    assert "Remote Traceback" in str(info.value)
    with pytest.raises(StopIteration):
        conn.root.raise_builtin("StopIteration")
    # the connection is fine afterwards
    assert conn.root.echo(1) == 1


def test_custom_exceptions(pair):
    server = pair.server()
    conn = pair.connect(server)
    with pytest.raises(GenericException) as info:
        conn.root.raise_custom()
    exc = info.value
    assert not isinstance(exc, compat_service.CustomError)
    assert type(exc).__name__ == "compat_service.CustomError"
    assert exc.args[:2] == ("custom failure", 42)
    assert exc.code == 42
    assert "Remote Traceback" in str(exc)

    inst = pair.connect(server, config={"instantiate_custom_exceptions": True})
    with pytest.raises(compat_service.CustomError) as info:
        inst.root.raise_custom()
    assert info.value.code == 42
    assert info.value.args[:2] == ("custom failure", 42)
    assert "Remote Traceback" in str(info.value)


def test_exception_from_client_callback_reaches_server_and_back(served):
    pair, conn = served

    def bad():
        raise KeyError("from client")

    with pytest.raises(KeyError) as info:
        conn.root.call(bad)
    # our own traceback went to the server and came back inside its own
    text = str(info.value)
    assert "from client" in text and text.count("Remote Traceback") >= 1


def test_exception_details(pair):
    conn = pair.connect(pair.server())
    # args that brine cannot carry arrive as their repr
    with pytest.raises(ValueError) as info:
        conn.root.raise_builtin("unbrinable")
    assert info.value.args == ("[1, 2]", "{3}")
    # a remote SystemExit is raised here (propagate_SystemExit_locally is
    # about the serving side)
    with pytest.raises(SystemExit) as info:
        conn.root.raise_builtin("SystemExit")
    assert info.value.args == (7,)
    assert conn.root.echo("alive") == "alive"

    # the serving side keeps the last traceback (rpyc.classic.pm reads it)
    def bad():
        raise KeyError("k")

    assert conn._last_traceback is None
    with pytest.raises(KeyError):
        conn.root.call(bad)
    assert conn._last_traceback is not None
    assert conn._last_traceback.tb_frame is not None

    quiet = pair.connect(pair.server(config={"include_local_traceback": False}))
    with pytest.raises(KeyError) as info:
        quiet.root.raise_builtin("KeyError")
    assert "exposed_raise_builtin" not in str(info.value)


def test_propagate_system_exit_locally(served):
    """A callback raising SystemExit: sent to the peer by default; raised
    on the serving side (ours) with propagate_SystemExit_locally."""
    pair, conn0 = served

    def leave():
        raise SystemExit(5)

    with pytest.raises(SystemExit):
        conn0.root.call(leave)
    assert conn0.root.echo(1) == 1

    conn = pair.connect(pair.servers[0], config={"propagate_SystemExit_locally": True,
                                                 "sync_request_timeout": 5})
    start = time.monotonic()
    with pytest.raises(SystemExit) as info:
        conn.root.call(leave)
    assert info.value.args == (5,)
    # at once, not after the call's timeout: the server still waits for
    # our answer to its callback, which will never come
    assert time.monotonic() - start < 2


def test_error_in_async_callback_propagates(served):
    """rpyc runs AsyncResult callbacks while serving; one that raises makes
    the serving call raise."""
    pair, conn = served
    res = rpyc.async_(conn.root.sleep)(0.2)
    res.add_callback(lambda r: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        res.wait()
    assert res.ready and res.value == 0.2
    assert conn.root.echo(1) == 1


def test_signal_interrupts_waiting_call(pair):
    """A signal handler that raises (Ctrl-C) ends a call waiting for its
    reply, as in rpyc, and the connection stays usable."""
    conn = pair.connect(pair.server(), config={"sync_request_timeout": None})
    check_interruptible(conn)
