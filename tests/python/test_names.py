"""Unit tests: lock ids, client ids and prefixes (topics.md, "Names")."""

import pytest

from mqlock.names import (
    check_client_id,
    check_lock_id,
    check_prefix,
    client_id_problem,
    lock_id_problem,
    new_client_id,
)


@pytest.mark.parametrize("name", [
    "doc-1", "a", "x" * 128, "é" * 64, "documents.document.42", "日本語", "a b", "\u00a0",
    "\U0001F600", "\ufffd",
])
def test_valid_lock_ids(name):
    assert lock_id_problem(name) is None
    assert check_lock_id(name) == name


@pytest.mark.parametrize("name,why", [
    ("", "1-128 bytes"),
    ("x" * 129, "1-128 bytes"),
    ("é" * 65, "1-128 bytes"),  # 130 bytes
    ("a/b", "/ + or #"),
    ("a+b", "/ + or #"),
    ("a#", "/ + or #"),
    ("a\x00b", "control"),
    ("a\x1fb", "control"),
    ("a\x7fb", "control"),
    ("a\x85b", "control"),
    ("a\x9fb", "control"),
    ("a\ufdd0", "non-characters"),
    ("a\ufdef", "non-characters"),
    ("a\ufffe", "non-characters"),
    ("a\uffff", "non-characters"),
    ("a\U0001fffe", "non-characters"),
    ("a\U0010ffff", "non-characters"),
    ("a\ud800", "not valid Unicode"),
    ("_doc", "start with _ or $"),
    ("$SYS", "start with _ or $"),
    (None, "must be a string"),
    (42, "must be a string"),
    (b"doc", "must be a string"),
])
def test_invalid_lock_ids(name, why):
    p = lock_id_problem(name)
    assert p is not None and why in p
    with pytest.raises(ValueError):
        check_lock_id(name)


def test_client_ids_may_start_with_underscore_not_dollar():
    assert client_id_problem("_svc") is None
    assert "start with $" in client_id_problem("$svc")
    assert "/ + or #" in client_id_problem("a/b")
    with pytest.raises(ValueError):
        check_client_id("")


def test_new_client_ids_are_random_and_valid():
    a, b = new_client_id("svc"), new_client_id("svc")
    assert a != b
    assert a.startswith("svc-") and len(a) == 4 + 16
    with pytest.raises(ValueError):
        new_client_id("bad/prefix")


def test_prefix():
    assert check_prefix("locks") == "locks"
    for bad in ("", "a/b", "$x", "a+"):
        with pytest.raises(ValueError):
            check_prefix(bad)
