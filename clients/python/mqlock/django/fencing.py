"""Fenced saves: the token is stored with the row in one conditional UPDATE.

The permission check and the write are two steps: a request can pass the
check, stall (a pause, a slow worker), and write after the lock went on to
someone else who saved meanwhile. The fence closes that gap in the
database: the row keeps the highest token that wrote it, and a write
carrying a lower token changes nothing::

    UPDATE documents_document
       SET title = ..., body = ..., mqlock_token = 17
     WHERE id = 42 AND (mqlock_token IS NULL OR mqlock_token <= 17)

One statement, so two racing saves cannot both win against each other: the
database serialises writes to one row, and whichever commits second is
checked against the first one's token (PostgreSQL re-evaluates the WHERE
clause on the updated row; SQLite and MySQL lock the row or table).

Use :class:`FencedModel` for the model and :class:`FencedSaveMixin` on the
DRF viewset, after :class:`~mqlock.django.permissions.HoldsEditLock`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Optional

from django.db import models, router, transaction
from django.db.models import Q
from django.db.models.signals import post_save, pre_save

from .locks import lock_id_for
from .permissions import conflict


class StaleWrite(Exception):
    """A fenced write found a higher token on the row: a later holder wrote."""


class FencedModel(models.Model):
    """Abstract model with ``mqlock_token``, the highest token that wrote
    the row, and :meth:`fenced_save`."""

    mqlock_token = models.BigIntegerField(
        null=True, blank=True, editable=False,
        help_text="mqlock fencing token of the last write (the highest so far)")

    class Meta:
        abstract = True

    def fenced_save(self, token: int, update_fields: Optional[Iterable[str]] = None,
                    using: Optional[str] = None) -> None:
        """Write this existing row with `token` in one conditional UPDATE.

        Writes every concrete field except the primary key (or only
        `update_fields`) and sets ``mqlock_token = token``, unless the row
        holds a higher token: then nothing changes and :class:`StaleWrite`
        is raised. Sends ``pre_save``/``post_save`` like :meth:`save`
        (``post_save`` only when written). Many-to-many fields are not part
        of the row and are not fenced.
        """
        if self.pk is None:
            raise ValueError("fenced_save() writes an existing row; save() creates it")
        cls = type(self)
        db = using or router.db_for_write(cls, instance=self)
        meta = self._meta
        names = set(update_fields) if update_fields is not None else None
        fields = [f for f in meta.concrete_fields
                  if not f.primary_key and f.name != "mqlock_token"
                  and (names is None or f.name in names or f.attname in names)]
        written = [f.name for f in fields] + ["mqlock_token"]
        pre_save.send(sender=cls, instance=self, raw=False, using=db,
                      update_fields=frozenset(written))
        values = {f.attname: f.pre_save(self, False) for f in fields}
        values["mqlock_token"] = token
        n = (cls._base_manager.using(db).filter(pk=self.pk)
             .filter(Q(mqlock_token__isnull=True) | Q(mqlock_token__lte=token))
             .update(**values))
        if n != 1:
            raise StaleWrite(f"{meta.label} {self.pk}: a later lock holder has written it")
        self.mqlock_token = token
        self._state.db = db
        self._state.adding = False
        post_save.send(sender=cls, instance=self, created=False, update_fields=frozenset(written),
                       raw=False, using=db)

    def fenced_delete(self, token: int, using: Optional[str] = None) -> None:
        """Delete this row unless it holds a higher token (then StaleWrite).

        In one transaction: a conditional UPDATE stamps the row with `token`
        (which also locks the row against other writers until the end of the
        transaction), then the ordinary delete() runs, with its signals and
        related-object handling.
        """
        cls = type(self)
        db = using or router.db_for_write(cls, instance=self)
        with transaction.atomic(using=db):
            n = (cls._base_manager.using(db).filter(pk=self.pk)
                 .filter(Q(mqlock_token__isnull=True) | Q(mqlock_token__lte=token))
                 .update(mqlock_token=token))
            if n != 1:
                raise StaleWrite(f"{self._meta.label} {self.pk}: a later lock holder has written it")
            self.delete(using=db)

    def save(self, *args: Any, **kwargs: Any) -> None:
        token = getattr(self, "_mqlock_fence", None)
        if token is not None and self.pk is not None and not self._state.adding:
            self.fenced_save(token, update_fields=kwargs.get("update_fields"),
                             using=kwargs.get("using"))
            return
        super().save(*args, **kwargs)


@contextmanager
def fence(instance: FencedModel, token: int) -> Iterator[FencedModel]:
    """Within the block, ``instance.save()`` is ``instance.fenced_save(token)``
    (so code that calls save(), like a DRF serializer, is fenced)."""
    instance._mqlock_fence = token  # type: ignore[attr-defined]
    try:
        yield instance
    finally:
        instance._mqlock_fence = None  # type: ignore[attr-defined]


class FencedSaveMixin:
    """DRF viewset mixin: updates and deletes are fenced with the token that
    :class:`~mqlock.django.permissions.HoldsEditLock` admitted.

    A write the fence refuses is answered 409 (code ``stale-write``) and
    changes nothing.
    """

    def mqlock_lock_id(self, instance: FencedModel) -> str:
        """The lock id guarding `instance` (the permission uses it too):
        ``lock_id_for(instance)`` unless overridden."""
        return lock_id_for(instance)

    def _mqlock_token(self, instance: FencedModel) -> int:
        lock_id = self.mqlock_lock_id(instance)
        tokens = getattr(self.request, "mqlock_tokens", None) or {}  # type: ignore[attr-defined]
        if lock_id not in tokens:
            # The permission did not run for this object: refuse rather than
            # write unfenced.
            raise conflict("token-missing", "this write was not checked against the lock",
                           lock_id, None)
        return tokens[lock_id]

    def perform_update(self, serializer: Any) -> None:
        self.fenced_save(serializer)

    def fenced_save(self, serializer: Any, **kwargs: Any) -> None:
        """``serializer.save(**kwargs)`` with the instance's save fenced; call
        it from your own perform_update to pass extra fields."""
        instance = serializer.instance
        token = self._mqlock_token(instance)
        try:
            with fence(instance, token):
                serializer.save(**kwargs)
        except StaleWrite:
            raise conflict("stale-write", "Someone who got the lock after you has saved.",
                           self.mqlock_lock_id(instance), None) from None

    def perform_destroy(self, instance: FencedModel) -> None:
        token = self._mqlock_token(instance)
        try:
            instance.fenced_delete(token)
        except StaleWrite:
            raise conflict("stale-write", "Someone who got the lock after you has saved.",
                           self.mqlock_lock_id(instance), None) from None
