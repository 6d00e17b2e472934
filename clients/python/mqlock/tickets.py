"""Tickets: the application vouches for a client (topics.md, "Tickets").

A ticket is a JWT (RFC 7519) signed with HS256 under a secret that the
application shares with ``mqlockd --ticket-key FILE``. It says which of the
application's users (`sub`, shown as `name`) will use which MQTT client id
(`client`), until when (`exp`), and optionally which locks (`locks`). The
coordinator then shows that user as ``uid`` in owner messages, which is what
a backend checks before it accepts a save.

PyJWT does the signing; this module only checks the claims against the
protocol's limits, so a ticket minted here is never refused for its form.
"""

from __future__ import annotations

import time
from typing import Iterable, Optional, Sequence, Union

import jwt

from .names import MAX_NAME_BYTES, check_client_id, check_lock_id, utf8_len

#: Longest ticket the coordinator accepts, in bytes.
MAX_TICKET_BYTES = 2048

#: Shortest key: HS256 wants at least 256 bits (RFC 7518 3.2).
MIN_KEY_BYTES = 32
#: Longest key mqlockd reads.
MAX_KEY_BYTES = 4096


def load_key(path: str) -> bytes:
    """Read a ticket key file as ``mqlockd --ticket-key`` does: its bytes,
    without one trailing newline.

    Raises OSError if it cannot be read and ValueError unless it holds 32 to
    4096 bytes.
    """
    with open(path, "rb") as f:
        key = f.read(MAX_KEY_BYTES + 2)
    if key.endswith(b"\n"):
        key = key[:-1]
    check_key(key)
    return key


def check_key(key: bytes) -> bytes:
    """Return `key` if it is usable for HS256 tickets, else raise ValueError."""
    if not isinstance(key, (bytes, bytearray)):
        raise ValueError("ticket key must be bytes")
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"ticket key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, not {len(key)}"
        )
    return bytes(key)


def mint_ticket(
    key: Union[bytes, bytearray],
    *,
    sub: str,
    client: str,
    name: str = "",
    ttl: float = 3600.0,
    locks: Optional[Iterable[str]] = None,
    now: Optional[float] = None,
) -> str:
    """Sign a ticket and return it (a compact JWT, ASCII).

    - `sub`: the application's id of the user, 1-128 bytes.
    - `client`: the MQTT client id the holder of the ticket will use.
    - `name`: the name others see, at most 128 bytes (longer is cut at a
      character boundary).
    - `ttl`: seconds until `exp` (at least 1); `now` overrides the clock
      (seconds since the epoch), for tests.
    - `locks`: the lock ids the ticket allows; None allows any. An empty list
      allows none.

    Raises ValueError for a claim the coordinator would refuse, or when the
    ticket would exceed 2048 bytes (too many or too long lock ids).
    """
    check_key(bytes(key))
    if not isinstance(sub, str) or not 1 <= utf8_len(sub) <= MAX_NAME_BYTES:
        raise ValueError(f"sub must be a string of 1-{MAX_NAME_BYTES} bytes")
    check_client_id(client)
    if not isinstance(name, str):
        raise ValueError("name must be a string")
    name = truncate_utf8(name, MAX_NAME_BYTES)
    if not ttl >= 1:
        raise ValueError("ttl must be at least 1 second")
    issued = time.time() if now is None else now
    claims: dict = {
        "sub": sub,
        "name": name,
        "client": client,
        "exp": int(issued + ttl),
    }
    if locks is not None:
        if isinstance(locks, str):
            raise ValueError("locks must be a list of lock ids, not a string")
        lock_list: Sequence[str] = [check_lock_id(x) for x in locks]
        claims["locks"] = list(dict.fromkeys(lock_list))
    token = jwt.encode(claims, bytes(key), algorithm="HS256")
    if isinstance(token, bytes):  # PyJWT < 2
        token = token.decode("ascii")
    if len(token) > MAX_TICKET_BYTES:
        raise ValueError(
            f"ticket would be {len(token)} bytes, more than {MAX_TICKET_BYTES}: "
            "name fewer locks"
        )
    return token


def read_ticket(key: Union[bytes, bytearray], ticket: str) -> dict:
    """Verify `ticket` as the coordinator does and return its claims.

    For tests and diagnostics: HS256 only, `exp` required. Raises
    jwt.InvalidTokenError (or a subclass) when it does not verify.
    """
    return jwt.decode(
        ticket,
        bytes(key),
        algorithms=["HS256"],
        options={"require": ["exp", "sub", "client"]},
    )


def truncate_utf8(s: str, limit: int) -> str:
    """`s` cut to at most `limit` UTF-8 bytes without splitting a character."""
    # Lone surrogates have no UTF-8 form: they become "?".
    b = s.encode("utf-8", "replace")
    return b[:limit].decode("utf-8", "ignore")
