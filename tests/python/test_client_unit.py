"""Unit tests of mqlock.Client that need no broker: options, failures to
connect, and what happens across fork()."""

import os
import socket
import time

import pytest

import mqlock
from mqlock import Client, ForkedError, Unavailable, per_process
from mqlock_stack import free_port


@pytest.mark.parametrize("kw", [
    dict(prefix="a/b"),
    dict(prefix=""),
    dict(reply_prefix="replies/#"),
    dict(user="x" * 129),
    dict(client_id="bad/id"),
    dict(client_id="$bad"),
    dict(keepalive=0),
    dict(keepalive=1.5),
    dict(timeout=0),
    dict(activity=-1),
    dict(certfile="c.pem"),
])
def test_bad_options(kw):
    with pytest.raises(ValueError):
        Client("mqtt://127.0.0.1:1883", **kw)


def test_bad_url():
    with pytest.raises(ValueError):
        Client("http://127.0.0.1:1883")


def test_nothing_connects_before_first_use():
    c = Client(f"mqtt://127.0.0.1:{free_port()}")
    assert not c.connected and c.conn == 0
    c.close()


def test_unreachable_broker_is_unavailable_within_timeout():
    c = Client(f"mqtt://127.0.0.1:{free_port()}", timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(Unavailable) as e:
        c.query("doc-1")
    assert e.value.code == "unavailable"
    assert time.monotonic() - t0 < 5
    c.close()


def test_silent_server_is_unavailable():
    # Accepts TCP but never answers CONNECT.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    try:
        c = Client(f"mqtt://127.0.0.1:{srv.getsockname()[1]}", timeout=1.0)
        with pytest.raises(Unavailable):
            c.lock("doc-1")
        c.close()
    finally:
        srv.close()


def test_invalid_lock_ids_are_refused_before_connecting():
    c = Client(f"mqtt://127.0.0.1:{free_port()}", timeout=0.2)
    for bad in ("", "a/b", "_x", "a\x00"):
        with pytest.raises(ValueError):
            c.lock(bad)
        with pytest.raises(ValueError):
            c.query(bad)
    assert c.conn == 0
    c.close()


def _in_child(fn):
    """Run fn() in a forked child; return what it wrote (bytes)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            out = fn()
        except BaseException as e:  # report anything to the parent
            out = f"raised {type(e).__name__}: {e}".encode()
        os.write(w, out)
        os._exit(0)
    os.close(w)
    chunks = []
    while True:
        b = os.read(r, 4096)
        if not b:
            break
        chunks.append(b)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks)


def test_a_client_refuses_to_work_in_a_forked_child():
    c = Client(f"mqtt://127.0.0.1:{free_port()}", timeout=0.2)

    def child():
        try:
            c.query("doc-1")
        except ForkedError as e:
            return f"forked:{e.code}".encode()
        return b"no error"

    assert _in_child(child) == b"forked:forked"
    c.close()


def test_per_process_makes_one_object_per_process():
    made = []
    pp = per_process(lambda: made.append(os.getpid()) or object())
    a = pp.get()
    assert pp.get() is a
    out = _in_child(lambda: b"own" if pp.get() is not a and pp.get() is pp.get() else b"shared")
    assert out == b"own"
    assert pp.get() is a  # the parent's is untouched
    assert made == [os.getpid()]


def test_exceptions_carry_codes():
    e = mqlock.Refused("client differs", code="bad-request", lock="doc-1")
    assert e.code == "bad-request" and e.lock == "doc-1"
    assert str(e) == "bad-request (doc-1): client differs"
    assert mqlock.Busy("x").code == "busy"
    assert mqlock.Timeout("x").code == "timeout"
    assert mqlock.LockLost("x", code="idle", token=3).token == 3
    assert isinstance(mqlock.LockLost("x"), mqlock.MqlockError)
