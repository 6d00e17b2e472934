"""The save check for Django REST Framework (topics.md, "Checking a save").

A write by application user U carrying token T on lock L is admitted only
while L's current holder is verified (by a ticket) as U and holds L with
token T. The check asks the coordinator (``query``), so it is exact also
right after the backend started. Tokens are public (owner messages carry
them), so a token alone proves nothing: the uid must match too.

Refusals are 409 Conflict with a JSON body naming the holder::

    {"detail": "Bob is editing this.", "code": "not-holder",
     "lock": "documents.document.1",
     "holder": {"user": "Bob", "uid": "2", "connected": true}}

===============  =============================================================
``code``         when
===============  =============================================================
token-missing    no token header (409)
token-malformed  the header is not a decimal integer below 2^53 (400)
free             nobody holds the lock (409)
not-holder       someone else holds it, or a client without a ticket (409)
stale-token      this user holds it, but with another token: another tab,
                 or a grant this page lost (409)
stale-write      the check passed but a later holder's save reached the row
                 first (409, from the fenced save)
unavailable      the coordinator did not answer in QUERY_TIMEOUT (503)
===============  =============================================================
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional

from rest_framework import status
from rest_framework.exceptions import APIException, NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission

import mqlock
from mqlock.state import MAX_SAFE_INTEGER, LockState

from . import backend, conf
from .locks import lock_id_for
from .tickets import user_id

_TOKEN_RE = re.compile(r"[0-9]{1,16}")


class _JSONError(APIException):
    """An APIException whose body is `body` exactly (DRF would stringify
    None values in a dict detail)."""

    def __init__(self, body: Dict[str, Any]) -> None:
        super().__init__(detail=body.get("detail"), code=body.get("code"))
        self.detail = body  # type: ignore[assignment]


class LockConflict(_JSONError):
    """409: the write is not admitted under the lock."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "lock-conflict"


class BadToken(_JSONError):
    """400: the token header is malformed."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "token-malformed"


class LockServiceUnavailable(_JSONError):
    """503: the coordinator could not be asked; nothing was written."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "unavailable"


def _holder(st: Optional[LockState]) -> Optional[Dict[str, Any]]:
    if st is None or st.owner is None:
        return None
    h: Dict[str, Any] = {"user": st.owner.user, "connected": st.owner.connected}
    if st.owner.uid is not None:
        h["uid"] = st.owner.uid
    return h


def conflict(code: str, detail: str, lock_id: str, st: Optional[LockState]) -> LockConflict:
    """A 409 naming the current holder of `lock_id` from `st`."""
    return LockConflict({"detail": detail, "code": code, "lock": lock_id, "holder": _holder(st)})


def parse_token(raw: Optional[str]) -> Optional[int]:
    """The token in a header value: None if absent; raises BadToken unless it
    is a decimal integer of at most 2^53 - 1."""
    if raw is None:
        return None
    raw = raw.strip()
    if not _TOKEN_RE.fullmatch(raw) or int(raw) > MAX_SAFE_INTEGER:
        header = conf.get("TOKEN_HEADER")
        raise BadToken({"detail": f"{header} must be a decimal integer below 2^53",
                        "code": "token-malformed"})
    return int(raw)


def request_token(request: Any) -> Optional[int]:
    """The fencing token the request carries in ``TOKEN_HEADER``, or None."""
    return parse_token(request.headers.get(conf.get("TOKEN_HEADER")))


def check_save(request: Any, lock_id: str) -> int:
    """Admit a write to `lock_id` by ``request.user`` or raise.

    Returns the token (also kept in ``request.mqlock_tokens[lock_id]`` for
    the fenced save). Raises NotAuthenticated for an anonymous user,
    :class:`BadToken`, :class:`LockConflict` or
    :class:`LockServiceUnavailable` as the module's table says.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        raise NotAuthenticated()
    token = request_token(request)
    if token is None:
        raise conflict("token-missing",
                       f"send the lock's token in {conf.get('TOKEN_HEADER')}", lock_id, None)
    try:
        st = backend.lock_state(lock_id)
    except mqlock.Unavailable as e:
        raise LockServiceUnavailable({"detail": f"the lock service did not answer: {e.message}",
                                      "code": "unavailable", "lock": lock_id}) from None
    except mqlock.MqlockError as e:
        raise LockServiceUnavailable({"detail": f"the lock service refused: {e}",
                                      "code": "unavailable", "lock": lock_id}) from None
    uid = user_id(user)
    if st.held_by(uid, token):
        tokens = getattr(request, "mqlock_tokens", None)
        if tokens is None:
            tokens = {}
            request.mqlock_tokens = tokens
        tokens[lock_id] = token
        return token
    if st.owner is None:
        raise conflict("free", "Nobody holds the lock: open the editor to take it.", lock_id, st)
    if st.owner.uid == uid:
        raise conflict("stale-token",
                       "You hold this lock in another window; save from there.", lock_id, st)
    name = st.owner.user or "Someone else"
    raise conflict("not-holder", f"{name} is editing this.", lock_id, st)


class HoldsEditLock(BasePermission):
    """Admit unsafe methods on an object only from its lock's holder.

    Safe methods (GET, HEAD, OPTIONS) pass. For the others the object's lock
    id is ``view.mqlock_lock_id(obj)`` when the view has that method
    (:class:`~mqlock.django.fencing.FencedSaveMixin` does: override it
    there for another mapping), else ``lock_id_for(obj)``; then
    :func:`check_save` decides. List-level writes (``create``)
    have no object and so no lock: combine with the permissions you already
    use, e.g. ``[IsAuthenticated, HoldsEditLock]``.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        return True

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        check_save(request, self.lock_id(request, view, obj))
        return True

    def lock_id(self, request: Any, view: Any, obj: Any) -> str:
        """The lock id guarding `obj`."""
        of_view = getattr(view, "mqlock_lock_id", None)
        return of_view(obj) if callable(of_view) else lock_id_for(obj)
