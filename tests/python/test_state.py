"""Unit tests: parsing the coordinator's lock states; the exact save check."""

import pytest

from mqlock.state import Holder, LockState, parse_json_object

HELD = {
    "ok": True, "lock": "doc-1", "result": "state",
    "owner": {"client": "ed-1", "user": "Alice", "uid": "7", "connected": True},
    "token": 17, "since": 1000, "idle_deadline": 601000, "waiting": 2,
    "queue": [{"client": "ed-2", "user": "Bob", "uid": "8", "connected": True},
              {"client": "svc", "user": "", "connected": False}],
    "now": 2000,
}


def test_parse_held():
    st = LockState.parse("doc-1", HELD)
    assert st.owner == Holder("ed-1", "Alice", "7", True)
    assert st.token == 17 and st.waiting == 2 and st.now == 2000
    assert st.queue[1] == Holder("svc", "", None, False)
    assert not st.free


def test_parse_free():
    st = LockState.parse("doc-1", {"owner": None, "token": None, "waiting": 0, "queue": []})
    assert st.free and st.token is None


@pytest.mark.parametrize("bad", [
    {"owner": "alice", "token": 1},
    {"owner": {"client": "a"}, "token": None},
    {"owner": {"client": "a"}, "token": -1},
    {"owner": {"client": "a"}, "token": 2**53},
    {"owner": {"client": "a"}, "token": 1.5},
    {"owner": {"client": "a"}, "token": True},
])
def test_parse_rejects_contradictions(bad):
    with pytest.raises(ValueError):
        LockState.parse("doc-1", bad)


def test_held_by_is_exact():
    st = LockState.parse("doc-1", HELD)
    assert st.held_by("7", 17)
    assert not st.held_by("8", 17)           # someone else, the holder's token
    assert not st.held_by("7", 16)           # the holder, an old token
    assert not st.held_by("7", 18)           # the holder, a forged higher token
    assert not st.held_by("7", 2**53 - 1)
    free = LockState.parse("doc-1", {"owner": None})
    assert not free.held_by("7", 17)


def test_unverified_holder_is_nobody():
    obj = dict(HELD, owner={"client": "ed-1", "user": "7", "connected": True})
    st = LockState.parse("doc-1", obj)
    assert st.owner.uid is None
    assert not st.held_by("7", 17)


def test_parse_json_object():
    assert parse_json_object(b'{"a":1}') == {"a": 1}
    assert parse_json_object(b"[1]") is None
    assert parse_json_object(b"\xff") is None
    assert parse_json_object(b"") is None
    assert parse_json_object(None) is None
