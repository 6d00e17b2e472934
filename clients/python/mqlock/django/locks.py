"""Lock ids of model instances: one function, one format.

``lock_id_for(document)`` is ``"<app_label>.<model_name>.<pk>"``, e.g.
``"documents.document.42"``. The primary key is percent-encoded except for
letters, digits and ``_ . - ~`` (so an integer or UUID key reads as is, and
a key holding ``/``, ``+``, ``#``, ``%`` or a control character still gives
a valid, unique lock id). App labels and model names never contain a dot, so
the id parses back unambiguously (:func:`parse_lock_id`).

The page, the ticket and the permission all derive the id with this
function, so they always agree on which lock guards which row.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Type
from urllib.parse import quote, unquote

from django.apps import apps
from django.db import models

from mqlock.names import check_lock_id


def lock_id_for(obj: Any, pk: Any = None) -> str:
    """The lock id of a model instance, or of model class `obj` and `pk`.

    Raises ValueError for an unsaved instance (no pk) or an id that would be
    longer than 128 bytes.
    """
    if isinstance(obj, type) and issubclass(obj, models.Model):
        model: Type[models.Model] = obj
        if pk is None:
            raise ValueError("lock_id_for(Model, pk): pk is required")
    elif isinstance(obj, models.Model):
        model = type(obj)
        if pk is None:
            pk = obj.pk
        if pk is None:
            raise ValueError("an unsaved instance has no lock id")
    else:
        raise TypeError("lock_id_for: a model instance or a model class and pk")
    meta = model._meta.concrete_model._meta  # proxies share their model's lock
    lock_id = f"{meta.app_label}.{meta.model_name}.{quote(str(pk), safe='')}"
    return check_lock_id(lock_id)


def parse_lock_id(lock_id: str) -> Optional[Tuple[Type[models.Model], str]]:
    """The model class and primary key (as a string) named by a lock id made
    by :func:`lock_id_for`, or None if it names no installed model."""
    parts = lock_id.split(".", 2) if isinstance(lock_id, str) else []
    if len(parts) != 3 or not parts[2]:
        return None
    try:
        model = apps.get_model(parts[0], parts[1])
    except (LookupError, ValueError):
        return None
    return model, unquote(parts[2])


def can_lock(user: Any, lock_id: str) -> bool:
    """The default ``CAN_LOCK``: an active user with the model's ``change``
    permission, for a lock id of an installed model (existing or not)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    parsed = parse_lock_id(lock_id)
    if parsed is None:
        return False
    meta = parsed[0]._meta
    return bool(user.has_perm(f"{meta.app_label}.change_{meta.model_name}"))
