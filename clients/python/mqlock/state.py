"""What the coordinator says about a lock: holders and lock states.

These are plain values parsed from the coordinator's JSON (the answer to a
``query``, and owner messages). Parsing is strict about types and lenient
about unknown fields, as topics.md asks of clients.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Tuple

MAX_SAFE_INTEGER = 2**53 - 1


def is_ms(v: Any) -> bool:
    """True for a JSON integer that can be a time in ms or a token."""
    return type(v) is int and 0 <= v <= MAX_SAFE_INTEGER


def parse_json_object(payload: Any) -> Optional[dict]:
    """A JSON object from `payload` (bytes or str), or None for anything else."""
    if payload is None:
        return None
    try:
        if isinstance(payload, (bytes, bytearray)):
            payload = bytes(payload).decode("utf-8")
        v = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return None
    return v if isinstance(v, dict) else None


@dataclass(frozen=True)
class Holder:
    """A holder or waiter as owner messages and query answers show it.

    `uid` is the application's user id from a verified ticket, None for a
    client without one: only a `uid` can be trusted to name a real user.
    """

    client: str
    user: str = ""
    uid: Optional[str] = None
    connected: bool = True

    @classmethod
    def parse(cls, obj: Any) -> Optional["Holder"]:
        """A Holder from an owner or queue entry, or None if it is not one."""
        if not isinstance(obj, Mapping) or not isinstance(obj.get("client"), str):
            return None
        user = obj.get("user")
        uid = obj.get("uid")
        connected = obj.get("connected")
        return cls(
            client=obj["client"],
            user=user if isinstance(user, str) else "",
            uid=uid if isinstance(uid, str) else None,
            connected=connected if isinstance(connected, bool) else True,
        )

    def to_json(self) -> dict:
        """The JSON form, as the coordinator writes it."""
        d: dict = {"client": self.client, "user": self.user, "connected": self.connected}
        if self.uid is not None:
            d["uid"] = self.uid
        return d


@dataclass(frozen=True)
class LockState:
    """One lock's state at one moment of the coordinator's.

    `owner` is None and `token` is None when nobody holds the lock. Times are
    ms since the Unix epoch by the coordinator's clock; `now` is that clock
    when the state was read (None if the coordinator did not say).
    """

    lock: str
    owner: Optional[Holder] = None
    token: Optional[int] = None
    since: Optional[int] = None
    idle_deadline: Optional[int] = None
    waiting: int = 0
    queue: Tuple[Holder, ...] = field(default_factory=tuple)
    now: Optional[int] = None

    @property
    def free(self) -> bool:
        """True when nobody holds the lock."""
        return self.owner is None

    def held_by(self, uid: str, token: int) -> bool:
        """The exact save check of topics.md, "Checking a save".

        True only while the holder is verified as the application's user
        `uid` (by a ticket) and holds the lock with exactly `token`.
        """
        return (
            self.owner is not None
            and self.owner.uid is not None
            and self.owner.uid == uid
            and self.token is not None
            and self.token == token
        )

    @classmethod
    def parse(cls, lock: str, obj: Mapping[str, Any]) -> "LockState":
        """A LockState from a query answer or an owner message of `lock`.

        Raises ValueError when `obj` is not one (for example the fields
        contradict each other).
        """
        owner_obj = obj.get("owner")
        owner = Holder.parse(owner_obj) if owner_obj is not None else None
        if owner_obj is not None and owner is None:
            raise ValueError("owner is not a holder object")
        token = obj.get("token")
        if owner is not None and not is_ms(token):
            raise ValueError("a held lock without a valid token")
        if owner is None:
            token = None
        queue_obj = obj.get("queue")
        queue: Tuple[Holder, ...] = ()
        if isinstance(queue_obj, list):
            queue = tuple(h for h in (Holder.parse(q) for q in queue_obj) if h)
        waiting = obj.get("waiting")
        return cls(
            lock=lock,
            owner=owner,
            token=token,
            since=obj["since"] if is_ms(obj.get("since")) else None,
            idle_deadline=(
                obj["idle_deadline"] if is_ms(obj.get("idle_deadline")) else None
            ),
            waiting=waiting if is_ms(waiting) else len(queue),
            queue=queue,
            now=obj["now"] if is_ms(obj.get("now")) else None,
        )

    def to_json(self) -> dict:
        """A JSON-ready dict, shaped like an owner message (without ``v``)."""
        return {
            "lock": self.lock,
            "owner": self.owner.to_json() if self.owner else None,
            "token": self.token,
            "since": self.since,
            "idle_deadline": self.idle_deadline,
            "waiting": self.waiting,
            "queue": [h.to_json() for h in self.queue],
            "now": self.now,
        }
