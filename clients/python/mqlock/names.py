"""Names on the wire: lock ids, client ids, random ids (topics.md, "Names").

Every name that becomes a topic level must be one the broker accepts, or the
broker drops the connection that used it. These checks follow mosquitto's
rules for topics, so a name that passes here is one the coordinator accepts.
"""

from __future__ import annotations

import secrets
from typing import Optional

#: Longest lock id, client id, ticket subject or user name, in UTF-8 bytes.
MAX_NAME_BYTES = 128

_FORBIDDEN = frozenset("/+#")


def _char_problem(ch: str) -> Optional[str]:
    cp = ord(ch)
    if ch in _FORBIDDEN:
        return "must not contain / + or #"
    if cp <= 0x1F or 0x7F <= cp <= 0x9F:
        return "must not contain control characters"
    if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFF) in (0xFFFE, 0xFFFF):
        return "must not contain Unicode non-characters"
    return None


def _name_problem(name: object, what: str) -> Optional[str]:
    if not isinstance(name, str):
        return f"{what} must be a string"
    try:
        n = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        # A lone surrogate has no UTF-8 form.
        return f"{what} is not valid Unicode"
    if n < 1 or n > MAX_NAME_BYTES:
        return f"{what} must be 1-{MAX_NAME_BYTES} bytes of UTF-8, not {n}"
    for ch in name:
        p = _char_problem(ch)
        if p:
            return f"{what} {p}"
    return None


def lock_id_problem(lock_id: object) -> Optional[str]:
    """Why `lock_id` is not a valid lock id, or None if it is.

    A lock id is one topic level of 1-128 bytes of UTF-8 without ``/ + #``,
    control characters or non-characters, not starting with ``_`` or ``$``.
    """
    p = _name_problem(lock_id, "lock id")
    if p:
        return p
    assert isinstance(lock_id, str)
    if lock_id[0] in "_$":
        return "lock id must not start with _ or $"
    return None


def client_id_problem(client_id: object) -> Optional[str]:
    """Why `client_id` is not a valid MQTT client id for mqlock, or None.

    The same rules as a lock id, except that it may start with ``_`` (not
    ``$``).
    """
    p = _name_problem(client_id, "client id")
    if p:
        return p
    assert isinstance(client_id, str)
    if client_id[0] == "$":
        return "client id must not start with $"
    return None


def check_lock_id(lock_id: object) -> str:
    """Return `lock_id` if it is valid, else raise ValueError saying why."""
    p = lock_id_problem(lock_id)
    if p:
        raise ValueError(p)
    assert isinstance(lock_id, str)
    return lock_id


def check_client_id(client_id: object) -> str:
    """Return `client_id` if it is valid, else raise ValueError saying why."""
    p = client_id_problem(client_id)
    if p:
        raise ValueError(p)
    assert isinstance(client_id, str)
    return client_id


def check_prefix(prefix: object) -> str:
    """Return the topic prefix `prefix` if it is one valid topic level."""
    p = _name_problem(prefix, "prefix")
    if p:
        raise ValueError(p)
    assert isinstance(prefix, str)
    if prefix[0] == "$":
        raise ValueError("prefix must not start with $")
    return prefix


def random_hex(nbytes: int) -> str:
    """`nbytes` bytes from the operating system's CSPRNG, as lowercase hex."""
    return secrets.token_hex(nbytes)


def new_client_id(prefix: str = "svc") -> str:
    """A fresh client id: `prefix`, ``-`` and 16 random hex digits."""
    return check_client_id(f"{prefix}-{random_hex(8)}")


def utf8_len(s: str) -> int:
    """Length of `s` in UTF-8 bytes (lone surrogates raise ValueError)."""
    try:
        return len(s.encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValueError("not valid Unicode") from e
