"""Exceptions of the mqlock client.

Every exception carries `code`: the coordinator's error code from topics.md
when the coordinator refused something (``bad-request``, ``invalid-lock``,
``session-mismatch``, ``limit``, ``internal``, ``stale``, ``ticket-invalid``,
``ticket-expired``, ``ticket-mismatch``, ``ticket-lock``,
``ticket-required``), or one of the client's own codes below.
"""

from __future__ import annotations

from typing import Optional


class MqlockError(Exception):
    """Base class. `code` names the failure, `message` explains it, `lock`
    is the lock id concerned (None when not about one lock)."""

    code: str = "error"

    def __init__(
        self, message: str, *, code: Optional[str] = None, lock: Optional[str] = None
    ) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.lock = lock

    def __str__(self) -> str:
        where = f" ({self.lock})" if self.lock else ""
        return f"{self.code}{where}: {self.message}"


class Refused(MqlockError):
    """The coordinator refused a request; `code` is its error code."""

    code = "refused"


class Busy(MqlockError):
    """A try-lock (``wait=0``) found the lock held by someone else."""

    code = "busy"


class Timeout(MqlockError):
    """The wait for a lock, or for an answer, ran out."""

    code = "timeout"


class Unavailable(MqlockError):
    """The broker cannot be reached or the coordinator does not answer."""

    code = "unavailable"


class LockLost(MqlockError):
    """A lock held (or awaited) was taken away.

    `code` is the reason: ``idle``, ``disconnect``, ``admin``, ``takeover``
    (the coordinator's reasons), ``dropped`` (removed from the queue while
    waiting) or ``offline-expired`` (no broker connection for longer than the
    coordinator's grace period). `token` is the token that was lost, if any;
    `local` is True when the client concluded it on its own (it fenced
    itself) rather than hearing it from the coordinator.
    """

    code = "lost"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        lock: Optional[str] = None,
        token: Optional[int] = None,
        local: bool = False,
    ) -> None:
        super().__init__(message, code=code, lock=lock)
        self.token = token
        self.local = local


class ForkedError(MqlockError):
    """A client was used in a process other than the one that created it.

    A forked child shares the parent's socket; using it would mix both
    processes' packets on one connection. Create a new client in the child
    (``mqlock.per_process`` does this for you).
    """

    code = "forked"
