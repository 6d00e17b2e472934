from django.conf import settings
from django.db import models

from mqlock.django.fencing import FencedModel


class Document(FencedModel):
    """A document one person at a time edits. FencedModel adds
    mqlock_token: the highest lock token that ever wrote the row."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title
