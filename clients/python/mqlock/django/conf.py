"""Settings: ``settings.MQLOCK``, a dict; every key is optional.

=====================  =========================  ==========================================
key                    default                    meaning
=====================  =========================  ==========================================
BROKER_URL             ``mqtt://127.0.0.1:1883``  the broker, for the backend's queries
BROKER_USERNAME        None                       the backend's broker login (role services)
BROKER_PASSWORD_FILE   None                       file whose first line is its password
BROKER_CAFILE          None                       CA for ``mqtts://`` (default: system CAs)
WEBSOCKET_URL          ``/mqtt``                  what pages connect to: ``ws(s)://...``, or a
                                                  path on this site (the scheme follows the
                                                  page's: ``https`` -> ``wss``)
PAGE_USERNAME          None                       broker login handed to pages (role editors)
PAGE_PASSWORD_FILE     None                       file whose first line is its password
TICKET_KEY_FILE        None                       the key shared with ``mqlockd --ticket-key``
TICKET_TTL             300                        seconds a ticket is valid (pages renew theirs)
PREFIX                 ``locks``                  mqlockd's ``--prefix``
REPLY_PREFIX           ``replies/``               mqlockd's ``--reply-prefix``
QUERY_TIMEOUT          2.0                        seconds to wait for the coordinator's answer
                                                  (then the save is refused with 503)
TOKEN_HEADER           ``X-Mqlock-Token``         request header carrying the fencing token
CAN_LOCK               see below                  ``f(user, lock_id) -> bool`` or its dotted path
USER_ID                ``str(user.pk)``           ``f(user) -> str``: the ticket's ``sub``
USER_NAME              full name or username      ``f(user) -> str``: the ticket's ``name``
CLIENT_ID_PREFIX       ``ed``                     pages' client ids: prefix, ``-``, 16 hex
KEEPALIVE              10                         the backend connection's MQTT keepalive, s
=====================  =========================  ==========================================

CAN_LOCK decides which locks a user's ticket may name. The default admits a
lock id made by :func:`mqlock.django.locks.lock_id_for` whose model the user
has the ``change`` permission for (``user.has_perm("app.change_model")``).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

DEFAULTS: Dict[str, Any] = {
    "BROKER_URL": "mqtt://127.0.0.1:1883",
    "BROKER_USERNAME": None,
    "BROKER_PASSWORD_FILE": None,
    "BROKER_CAFILE": None,
    "WEBSOCKET_URL": "/mqtt",
    "PAGE_USERNAME": None,
    "PAGE_PASSWORD_FILE": None,
    "TICKET_KEY_FILE": None,
    "TICKET_TTL": 300,
    "PREFIX": "locks",
    "REPLY_PREFIX": "replies/",
    "QUERY_TIMEOUT": 2.0,
    "TOKEN_HEADER": "X-Mqlock-Token",
    "CAN_LOCK": "mqlock.django.locks.can_lock",
    "USER_ID": "mqlock.django.tickets.default_user_id",
    "USER_NAME": "mqlock.django.tickets.default_user_name",
    "CLIENT_ID_PREFIX": "ed",
    "KEEPALIVE": 10,
}

_CALLABLES = ("CAN_LOCK", "USER_ID", "USER_NAME")

_mu = threading.Lock()
_cache: Dict[str, Any] = {}


def get(key: str) -> Any:
    """The value of MQLOCK[key], or its default. Callables named by a dotted
    path are imported."""
    if key not in DEFAULTS:
        raise KeyError(f"unknown mqlock setting {key}")
    with _mu:
        if key in _cache:
            return _cache[key]
    user = getattr(settings, "MQLOCK", {}) or {}
    if not isinstance(user, dict):
        raise ImproperlyConfigured("settings.MQLOCK must be a dict")
    unknown = set(user) - set(DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(f"settings.MQLOCK: unknown keys {sorted(unknown)}")
    value = user.get(key, DEFAULTS[key])
    if key in _CALLABLES and isinstance(value, str):
        value = import_string(value)
    with _mu:
        _cache[key] = value
    return value


def callable_setting(key: str) -> Callable[..., Any]:
    v = get(key)
    if not callable(v):
        raise ImproperlyConfigured(f"settings.MQLOCK[{key!r}] must be callable")
    return v


def read_secret(path: Optional[str], what: str) -> Optional[str]:
    """First line of the file at `path` (None if no path is set)."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    except OSError as e:
        raise ImproperlyConfigured(f"settings.MQLOCK[{what!r}]: cannot read {path}: {e}") from e


def _on_setting_changed(setting: str = "", **kwargs: Any) -> None:
    if setting == "MQLOCK":
        clear()


def clear() -> None:
    """Forget cached settings and this process's broker connection."""
    with _mu:
        _cache.clear()
    from . import backend

    backend.reset()
