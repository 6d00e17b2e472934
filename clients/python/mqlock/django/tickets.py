"""Tickets for the logged-in user (topics.md, "Tickets").

``ticket_for(request, lock_ids)`` vouches that the page of ``request.user``
will use one client id, for the given locks only, for ``TICKET_TTL``
seconds. The coordinator then shows that user's id as ``uid`` in owner
messages, and :class:`~mqlock.django.permissions.HoldsEditLock` admits saves
only from the holder whose ``uid`` is the saving user's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional

from django.core.exceptions import ImproperlyConfigured, PermissionDenied

from mqlock.names import check_client_id, check_lock_id, new_client_id
from mqlock.tickets import load_key, mint_ticket

from . import conf

#: How many client ids one Django session may have tickets renewed for.
MAX_SESSION_CLIENTS = 32
_SESSION_KEY = "mqlock.clients"


@dataclass(frozen=True)
class Ticket:
    """A minted ticket: the JWT, the client id it is for, when it expires
    (seconds since the epoch) and the locks it allows."""

    ticket: str
    client_id: str
    expires: int
    locks: List[str]

    def __str__(self) -> str:
        return self.ticket


def default_user_id(user: Any) -> str:
    """The default ``USER_ID``: the user's primary key as a string."""
    return str(user.pk)


def default_user_name(user: Any) -> str:
    """The default ``USER_NAME``: full name, else the username."""
    full = user.get_full_name() if hasattr(user, "get_full_name") else ""
    return (full or "").strip() or user.get_username()


def user_id(user: Any) -> str:
    """The id the application's tickets give `user` (the ``uid`` others see)."""
    return str(conf.callable_setting("USER_ID")(user))


def _key() -> bytes:
    path = conf.get("TICKET_KEY_FILE")
    if not path:
        raise ImproperlyConfigured("settings.MQLOCK['TICKET_KEY_FILE'] is not set")
    try:
        return load_key(path)
    except (OSError, ValueError) as e:
        raise ImproperlyConfigured(f"ticket key {path}: {e}") from e


def ticket_for(request: Any, lock_ids: Iterable[str], client_id: Optional[str] = None) -> Ticket:
    """Mint a ticket for ``request.user`` limited to `lock_ids`.

    Every lock id must pass ``CAN_LOCK`` for the user, else PermissionDenied
    (nothing is minted). Without `client_id` a fresh one is made; a given
    one must have been issued to this session before (renewal), else
    PermissionDenied: a user cannot get a ticket naming someone else's
    client id. The client id is remembered in the session (when there is
    one) for renewals.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise PermissionDenied("log in first")
    locks = list(dict.fromkeys(lock_ids))
    can = conf.callable_setting("CAN_LOCK")
    for lock_id in locks:
        try:
            check_lock_id(lock_id)
        except ValueError as e:
            raise PermissionDenied(str(e)) from None
        if not can(user, lock_id):
            raise PermissionDenied(f"you may not edit {lock_id}")
    session = getattr(request, "session", None)
    issued: List[str] = list(session.get(_SESSION_KEY, [])) if session is not None else []
    if client_id is None:
        client_id = new_client_id(conf.get("CLIENT_ID_PREFIX"))
    else:
        try:
            check_client_id(client_id)
        except ValueError as e:
            raise PermissionDenied(str(e)) from None
        if client_id not in issued:
            raise PermissionDenied("that client id was not issued to this session")
    ttl = int(conf.get("TICKET_TTL"))
    now = time.time()
    ticket = mint_ticket(
        _key(),
        sub=user_id(user),
        name=str(conf.callable_setting("USER_NAME")(user)),
        client=client_id,
        ttl=ttl,
        locks=locks,
        now=now,
    )
    if session is not None and client_id not in issued:
        issued = (issued + [client_id])[-MAX_SESSION_CLIENTS:]
        session[_SESSION_KEY] = issued
    return Ticket(ticket=ticket, client_id=client_id, expires=int(now + ttl), locks=locks)
