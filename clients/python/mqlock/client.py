"""The mqlock client for Python services and backends.

One :class:`Client` is one MQTT connection (paho-mqtt, MQTT 5) on behalf of
one process. It follows topics.md as the ``mqlock`` command and mqlock.js
do:

- a random client id and a secret session per client; requests go to the
  bound topic ``P/<lock>/request/<client id>``;
- a Last Will on ``P/_clients/<client id>/will`` naming the session and the
  connection counter ``conn``, raised before every (re)connect;
- its events topic subscribed with retain handling 2, and retained copies
  ignored;
- ``acquire`` sent again for every lock held or awaited after every reconnect
  and whenever the coordinator's ``epoch`` grows; a re-sent acquire answered
  with another token, or a queue place, means the lock was lost meanwhile;
- ``activity`` while a lock is held (automatically, unless turned off), and
  local fencing at the deadline of an idle warning by the coordinator's
  clock, and after the coordinator's grace period without a broker
  connection;
- MQTT 5 request/response for ``query`` (who holds a lock, exactly, now).

Threads: paho's network thread runs the callbacks; one timer thread sends
activity and checks deadlines. Every public method may be called from any
thread of the process that created the client, and from no other process
(:class:`ForkedError`): a forked child must make its own client.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Union

import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

from .errors import (
    Busy,
    ForkedError,
    LockLost,
    MqlockError,
    Refused,
    Timeout,
    Unavailable,
)
from .names import (
    MAX_NAME_BYTES,
    check_client_id,
    check_lock_id,
    check_prefix,
    new_client_id,
    random_hex,
    utf8_len,
)
from .state import LockState, is_ms, parse_json_object
from .url import parse_broker_url

log = logging.getLogger("mqlock")

PROTOCOL = 1
DEFAULT_URL = "mqtt://127.0.0.1:1883"

#: A ticket, or a function that mints one for a client id.
TicketSource = Union[None, str, Callable[[str], str]]

# Handle states. pending -> waiting -> held, ending in one of the final ones.
PENDING = "pending"
WAITING = "waiting"
HELD = "held"
LOST = "lost"
RELEASED = "released"
BUSY = "busy"
FAILED = "failed"
_FINAL = frozenset({LOST, RELEASED, BUSY, FAILED})

_RETAIN_NEVER = SubscribeOptions.RETAIN_DO_NOT_SEND


def _wall_ms() -> int:
    return int(time.time() * 1000)


class Held:
    """One lock as seen by one client: returned by :meth:`Client.lock`.

    A context manager: leaving the ``with`` block releases the lock, and
    raises :class:`LockLost` if the lock was lost while the block ran (unless
    the block is already raising).

    Attributes are read-only snapshots; `token` is the fencing token to send
    with every write made under this lock.
    """

    def __init__(
        self, client: "Client", lock_id: str, wait: bool, takeover: bool, stale_up_to: int
    ) -> None:
        self._client = client
        self.lock_id = lock_id
        self._wait = wait
        self._takeover = takeover
        # Grants up to this token answered an earlier handle of this lock in
        # this client: never ours.
        self._stale_up_to = stale_up_to
        self._state = PENDING
        self._token: Optional[int] = None
        self._idle_deadline: Optional[int] = None
        self._warning: Optional[int] = None
        self._position: Optional[int] = None
        self._owner: Optional[LockState] = None
        self._lost: Optional[LockLost] = None
        self._error: Optional[MqlockError] = None
        self._resync = False
        self._next_activity: Optional[float] = None  # monotonic
        self._lost_callbacks: List[Callable[["Held", LockLost], None]] = []

    # --- read-only view ------------------------------------------------------

    @property
    def state(self) -> str:
        """``pending``, ``waiting``, ``held``, ``lost``, ``released``, ``busy``
        or ``failed``."""
        return self._state

    @property
    def held(self) -> bool:
        """True while the lock is held (and not fenced)."""
        return self._state == HELD

    @property
    def token(self) -> Optional[int]:
        """The fencing token while held (the lost one after a loss)."""
        return self._token

    @property
    def idle_deadline(self) -> Optional[int]:
        """ms, coordinator's clock: the lock goes then unless there is activity."""
        return self._idle_deadline if self._state == HELD else None

    @property
    def position(self) -> Optional[int]:
        """1-based place in the queue while waiting."""
        return self._position if self._state == WAITING else None

    @property
    def owner(self) -> Optional[LockState]:
        """The last owner message of this lock, parsed (None before the first)."""
        return self._owner

    @property
    def lost(self) -> Optional[LockLost]:
        """Why the lock was lost, after a loss; else None."""
        return self._lost

    # --- actions -------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`LockLost` unless the lock is still held.

        Call it before each step of work done under the lock. It also fences
        locally: once the deadline of an idle warning has passed (by the
        coordinator's clock) the lock counts as lost even if the revocation
        has not arrived.
        """
        with self._client._mu:
            self._client._check_fence(self)
            if self._state == HELD:
                return
            if self._lost is not None:
                raise self._lost
            raise LockLost(
                f"lock is {self._state}", code=self._state, lock=self.lock_id, token=self._token
            )

    def touch(self) -> None:
        """Send ``activity`` now: the idle deadline moves to now + idle timeout.

        Does nothing unless held. With automatic activity (the default) there
        is no need to call it.
        """
        self._client._touch(self)

    def release(self, timeout: Optional[float] = None) -> None:
        """Give the lock back, or leave the queue. Safe in any state.

        Waits up to `timeout` seconds (default: the client's `timeout`) until
        the broker has the release; if it cannot be sent, the coordinator
        frees the lock after its grace period once this client is gone.
        """
        self._client._release(self, timeout)

    def confirm(self, timeout: Optional[float] = None) -> bool:
        """Ask the coordinator whether this lock is still ours, with this token.

        A process that was stopped or cut off may not have heard that its lock
        went to someone else; this asks (a ``query``) and returns True only if
        the coordinator names this client as holder with this token. Raises
        :class:`Unavailable` if no answer comes within `timeout`.
        """
        if self._token is None:
            return False
        st = self._client.query(self.lock_id, timeout=timeout)
        return (
            st.owner is not None
            and st.owner.client == self._client.client_id
            and st.token == self._token
            and self._state == HELD
        )

    def on_lost(self, fn: Callable[["Held", LockLost], None]) -> None:
        """Call ``fn(held, exc)`` once if the lock is lost (on a client thread;
        keep it short). Called at once if it already was."""
        with self._client._mu:
            if self._lost is None:
                self._lost_callbacks.append(fn)
                return
            lost = self._lost
        fn(self, lost)

    def __enter__(self) -> "Held":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        lost = self._lost if self._state == LOST else None
        self.release()
        if lost is not None and exc_type is None:
            raise lost

    def __repr__(self) -> str:
        return f"<mqlock.Held {self.lock_id!r} {self._state} token={self._token}>"


class Client:
    """A connection to the broker for locking and asking about locks.

    Parameters (all keyword-only except `url`):

    - `url`: ``mqtt://host:1883``, ``mqtts://host:8883``, ``ws://...`` or
      ``wss://...``.
    - `user`: the name others see (at most 128 bytes; a ticket's ``name``
      wins).
    - `ticket`: a ticket for this client id, or a function ``f(client_id)``
      returning a fresh one; sent with every ``acquire``.
    - `prefix`, `reply_prefix`: mqlockd's ``--prefix`` and ``--reply-prefix``.
    - `keepalive`: MQTT keepalive in seconds (a frozen process loses its
      locks about 1.5 x keepalive + grace after it froze).
    - `client_id`: defaults to `client_id_prefix` + ``-`` + 16 random hex.
    - `username`, `password`: broker credentials. `cafile`, `certfile`,
      `keyfile`: TLS (``mqtts``/``wss``); without `cafile` the system's CAs.
    - `timeout`: seconds to wait for the broker at connect and for the
      coordinator's answers.
    - `activity`: seconds between automatic ``activity`` requests for held
      locks; None (default) picks a third of the idle timeout, 0 turns it
      off (then call :meth:`Held.touch`).
    - `grace`: the coordinator's ``--grace`` in seconds, used until its
      status message says (protocol: ``grace`` in the status).

    Nothing is sent until the first :meth:`connect`, :meth:`lock` or
    :meth:`query`.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        user: str = "",
        ticket: TicketSource = None,
        prefix: str = "locks",
        reply_prefix: str = "replies/",
        keepalive: int = 10,
        client_id: Optional[str] = None,
        client_id_prefix: str = "svc",
        username: Optional[str] = None,
        password: Optional[str] = None,
        cafile: Optional[str] = None,
        certfile: Optional[str] = None,
        keyfile: Optional[str] = None,
        timeout: float = 10.0,
        activity: Optional[float] = None,
        grace: float = 10.0,
    ) -> None:
        self._url = parse_broker_url(url)
        self.prefix = check_prefix(prefix)
        if not isinstance(reply_prefix, str) or not reply_prefix or any(
            c in reply_prefix for c in "+#"
        ):
            raise ValueError("reply_prefix must be a non-empty string without + or #")
        self.reply_prefix = reply_prefix
        if not isinstance(user, str) or utf8_len(user) > MAX_NAME_BYTES:
            raise ValueError(f"user must be a string of at most {MAX_NAME_BYTES} bytes")
        self.user = user
        self.client_id = (
            check_client_id(client_id) if client_id is not None else new_client_id(client_id_prefix)
        )
        if not (isinstance(keepalive, int) and 1 <= keepalive <= 65535):
            raise ValueError("keepalive must be an integer number of seconds, 1-65535")
        self.keepalive = keepalive
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        self.timeout = float(timeout)
        if activity is not None and activity < 0:
            raise ValueError("activity must be None, 0 or a positive number of seconds")
        self._activity = activity
        self._grace_default = float(grace)
        self._ticket = ticket
        self._username = username
        self._password = password
        self._tls = (cafile, certfile, keyfile)
        if (certfile is None) != (keyfile is None):
            raise ValueError("certfile and keyfile go together")

        self.session = random_hex(16)
        self.conn = 0
        self._pid = os.getpid()
        self._mu = threading.RLock()
        self._cv = threading.Condition(self._mu)
        self._paho: Optional[paho.Client] = None
        self._connected = False
        self._ever_connected = False
        self._connect_error: Optional[str] = None
        self._closed = False
        self._down_since: Optional[float] = time.monotonic()
        self._handles: Dict[str, Held] = {}
        self._ended_tokens: Dict[str, int] = {}
        self._to_release: Dict[str, None] = {}
        self._replies: Dict[bytes, List[Any]] = {}
        self._status: Optional[dict] = None
        self._epoch: Optional[int] = None
        self._offset_ms = 0  # coordinator clock - our wall clock
        self._idle_timeout_ms: Optional[int] = None
        self._timer: Optional[threading.Thread] = None
        self._callbacks: List[Callable[[], None]] = []

    # --- topics --------------------------------------------------------------

    def _topic(self, *levels: str) -> str:
        return "/".join((self.prefix,) + levels)

    @property
    def _events_topic(self) -> str:
        return self._topic("_clients", self.client_id, "events")

    @property
    def _status_topic(self) -> str:
        return self._topic("_coordinator", "status")

    @property
    def _reply_base(self) -> str:
        return f"{self.reply_prefix}{self.client_id}"

    # --- public --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected

    @property
    def status(self) -> Optional[dict]:
        """The coordinator's last status message (None before the first)."""
        return self._status

    def wait_online(self, timeout: Optional[float] = None) -> dict:
        """Connect if needed and wait until the coordinator's status says
        ``online``; return that status. Raises :class:`Unavailable` after
        `timeout` seconds (default: the client's)."""
        self._check_pid()
        t = self.timeout if timeout is None else float(timeout)
        end = time.monotonic() + t
        self._ensure_connected(t)
        with self._mu:
            while not (self._status and self._status.get("state") == "online"):
                left = end - time.monotonic()
                if left <= 0 or self._closed:
                    state = self._status.get("state") if self._status else "unknown"
                    raise Unavailable(f"the coordinator is not online (status: {state})")
                self._cv.wait(left)
            return dict(self._status)

    def coordinator_now(self) -> int:
        """The coordinator's wall clock now, in ms, as estimated from the
        ``now`` of its last message (our clock if it never said)."""
        return _wall_ms() + self._offset_ms

    def connect(self, timeout: Optional[float] = None) -> "Client":
        """Connect now (otherwise the first lock or query does). Returns self.

        Raises :class:`Unavailable` if the broker does not accept the
        connection within `timeout` seconds (default: the client's).
        """
        self._check_pid()
        self._ensure_connected(timeout)
        return self

    def lock(
        self,
        lock_id: str,
        *,
        wait: Optional[float] = None,
        takeover: bool = False,
    ) -> Held:
        """Acquire `lock_id` and return its :class:`Held` once granted.

        - `wait`: None waits as long as it takes; 0 is a try-lock
          (:class:`Busy` if someone else holds it); otherwise seconds, then
          the queue place is given up and :class:`Timeout` raised.
        - `takeover`: take the lock over at once from another client of the
          same verified user (protocol ``takeover``); needs a ticket.

        Raises :class:`Refused` (with the coordinator's code) if the request
        is refused, :class:`LockLost` (code ``dropped``) if the coordinator
        removed this client from the queue, :class:`Unavailable` when the
        broker cannot be reached, ValueError for an invalid lock id, and
        :class:`MqlockError` (code ``in-use``) if this client already holds
        or awaits the lock.
        """
        self._check_pid()
        check_lock_id(lock_id)
        if wait is not None and wait < 0:
            raise ValueError("wait must be None or >= 0 seconds")
        self._ensure_connected(None)
        with self._mu:
            if self._closed:
                raise MqlockError("client is closed", code="closed")
            if lock_id in self._handles:
                raise MqlockError(
                    "this client already holds or awaits this lock", code="in-use", lock=lock_id
                )
            h = Held(self, lock_id, wait != 0, takeover, self._ended_tokens.get(lock_id, -1))
            self._handles[lock_id] = h
            self._to_release.pop(lock_id, None)
            if self._connected and self._paho is not None:
                self._paho.subscribe(self._topic(lock_id, "owner"), options=SubscribeOptions(qos=1))
                self._send_acquire(h, resync=False)
            start = time.monotonic()
            limit = None if wait is None else (self.timeout if wait == 0 else float(wait))
            while h._state in (PENDING, WAITING):
                left = None if limit is None else limit - (time.monotonic() - start)
                if left is not None and left <= 0:
                    break
                self._cv.wait(left)
            state = h._state
        self._run_callbacks()
        if state == HELD:
            return h
        if state in (PENDING, WAITING):
            h.release()
            if wait == 0:
                raise Unavailable(
                    "no answer from the coordinator to a try-lock", lock=lock_id
                )
            raise Timeout(f"waited {wait} s for the lock", lock=lock_id)
        if state == BUSY:
            raise Busy("held by someone else", lock=lock_id)
        if state == FAILED and h._error is not None:
            raise h._error
        if h._lost is not None:
            raise h._lost
        raise MqlockError(f"lock ended {state}", code=state, lock=lock_id)

    def query(self, lock_id: str, *, timeout: Optional[float] = None) -> LockState:
        """Ask the coordinator who holds `lock_id`, now (protocol ``query``).

        Exact at the moment the coordinator answers, also right after this
        process started: the answer comes from the coordinator, not from a
        mirror of owner messages. Raises :class:`Unavailable` if the broker
        or the coordinator does not answer within `timeout` seconds,
        :class:`Refused` if the coordinator refuses (for example
        ``invalid-lock``).
        """
        self._check_pid()
        check_lock_id(lock_id)
        t = self.timeout if timeout is None else float(timeout)
        end = time.monotonic() + t
        self._ensure_connected(t)
        body = {"op": "query", "client": self.client_id, "lock": lock_id}
        reply = self._request_reply(lock_id, body, end)
        if reply.get("ok") is True and reply.get("result") == "state":
            if is_ms(reply.get("now")):
                self._offset_ms = reply["now"] - _wall_ms()
            try:
                return LockState.parse(lock_id, reply)
            except ValueError as e:
                raise MqlockError(
                    f"malformed answer from the coordinator: {e}", code="internal", lock=lock_id
                ) from None
        raise self._refusal(reply, lock_id)

    def held(self) -> List[Held]:
        """The handles this client holds or awaits now."""
        with self._mu:
            return list(self._handles.values())

    def close(self, timeout: Optional[float] = None) -> None:
        """Release every lock, then disconnect normally (no will).

        If a release cannot be handed to the broker within `timeout`, the
        connection ends with the will instead, so the coordinator still
        frees the locks after its grace period. Safe to call twice.
        """
        if os.getpid() != self._pid:
            return  # the parent's connection: not ours to close
        t = self.timeout if timeout is None else float(timeout)
        with self._mu:
            if self._closed:
                return
            handles = list(self._handles.values())
        infos = [self._release(h, 0, collect=True) for h in handles]
        ok = True
        for info in infos:
            if info is None:
                continue
            try:
                info.wait_for_publish(t)
                ok = ok and info.is_published()
            except (RuntimeError, ValueError):
                ok = False
        with self._mu:
            self._closed = True
            pc = self._paho
            self._cv.notify_all()
            for slot in self._replies.values():
                slot[1].set()  # no answer will come: Unavailable
        if pc is not None:
            if ok:
                pc.disconnect()
            else:
                pc.disconnect(reasoncode=ReasonCodes(PacketTypes.DISCONNECT, "Disconnect with will message"))
            pc.loop_stop()
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.join(t)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<mqlock.Client {self.client_id} {'connected' if self._connected else 'disconnected'}>"

    # --- connection ----------------------------------------------------------

    def _check_pid(self) -> None:
        if os.getpid() != self._pid:
            raise ForkedError(
                f"client {self.client_id} was created in process {self._pid}; "
                "make a new client in this process"
            )

    def _ensure_connected(self, timeout: Optional[float]) -> None:
        t = self.timeout if timeout is None else timeout
        with self._mu:
            if self._closed:
                raise MqlockError("client is closed", code="closed")
            if self._paho is None:
                self._start()
            end = time.monotonic() + t
            while not self._connected and not self._closed:
                left = end - time.monotonic()
                if left <= 0:
                    why = f": {self._connect_error}" if self._connect_error else ""
                    raise Unavailable(
                        f"no connection to the broker at {self._url.host}:{self._url.port}"
                        f" within {t:g} s{why}"
                    )
                self._cv.wait(left)
            if self._closed:
                raise MqlockError("client is closed", code="closed")

    def _start(self) -> None:
        u = self._url
        pc = _Paho(self._before_connect, client_id=self.client_id,
                   protocol=paho.MQTTv5, transport=u.transport)
        if u.transport == "websockets":
            pc.ws_set_options(path=u.path)
        if u.tls:
            cafile, certfile, keyfile = self._tls
            pc.tls_set(ca_certs=cafile, certfile=certfile, keyfile=keyfile)
        if self._username is not None:
            pc.username_pw_set(self._username, self._password)
        pc.reconnect_delay_set(min_delay=1, max_delay=5)
        pc.max_inflight_messages_set(100)
        pc.max_queued_messages_set(0)
        pc.on_connect = self._on_connect
        pc.on_connect_fail = self._on_connect_fail
        pc.on_disconnect = self._on_disconnect
        pc.on_message = self._on_message
        self._paho = pc
        pc.connect_async(u.host, u.port, keepalive=self.keepalive, clean_start=True)
        pc.loop_start()
        self._timer = threading.Thread(
            target=self._timer_main, name=f"mqlock-{self.client_id}", daemon=True
        )
        self._timer.start()

    def _before_connect(self) -> None:
        # Runs on paho's thread before every CONNECT: a new conn, and a will
        # that names it (topics.md, "Wills and disconnection").
        with self._mu:
            self.conn += 1
            payload = json.dumps({"session": self.session, "conn": self.conn})
            assert self._paho is not None
            self._paho.will_set(self._topic("_clients", self.client_id, "will"), payload, qos=1)

    def _on_connect(self, pc, userdata, flags, rc, properties=None) -> None:
        if rc != 0:
            with self._mu:
                self._connect_error = f"broker refused the connection: {rc}"
                self._cv.notify_all()
            return
        if self._url.transport == "tcp":
            sock = pc.socket()
            try:
                # Without it a request/response can wait 40 ms on Nagle.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        with self._mu:
            self._connected = True
            self._ever_connected = True
            self._connect_error = None
            self._down_since = None
            # Subscriptions first: the broker handles one connection's packets
            # in order, so every answer to the requests below finds them.
            subs = [
                (self._events_topic, SubscribeOptions(qos=1, retainHandling=_RETAIN_NEVER)),
                (self._reply_base + "/#", SubscribeOptions(qos=1, retainHandling=_RETAIN_NEVER)),
                (self._status_topic, SubscribeOptions(qos=1)),
            ]
            subs += [(self._topic(i, "owner"), SubscribeOptions(qos=1)) for i in self._handles]
            pc.subscribe(subs)
            for lock_id in list(self._to_release):
                self._publish_request(lock_id, "release")
            self._to_release.clear()
            for h in list(self._handles.values()):
                self._send_acquire(h, resync=True)
            self._cv.notify_all()
        log.debug("mqlock %s: connected (conn %d)", self.client_id, self.conn)

    def _on_connect_fail(self, pc, userdata) -> None:
        with self._mu:
            self._connect_error = "connection failed"
            self._cv.notify_all()

    def _on_disconnect(self, pc, userdata, rc, properties=None) -> None:
        with self._mu:
            if self._connected:
                self._down_since = time.monotonic()
            self._connected = False
            if rc != 0 and not self._closed:
                self._connect_error = f"connection lost: {rc}"
            self._cv.notify_all()
        if not self._closed:
            log.info("mqlock %s: disconnected (%s)", self.client_id, rc)

    # --- messages ------------------------------------------------------------

    def _on_message(self, pc, userdata, msg) -> None:
        topic = msg.topic
        try:
            if topic == self._events_topic:
                if not msg.retain:
                    self._on_event(parse_json_object(msg.payload))
            elif topic.startswith(self._reply_base + "/"):
                self._on_reply(msg)
            elif topic == self._status_topic:
                self._on_status(parse_json_object(msg.payload))
            elif topic.startswith(self.prefix + "/") and topic.endswith("/owner"):
                lock_id = topic[len(self.prefix) + 1 : -len("/owner")]
                self._on_owner(lock_id, msg.payload)
        except Exception:  # never let a bad message stop paho's thread
            log.exception("mqlock %s: error handling a message on %s", self.client_id, topic)
        self._run_callbacks()

    def _on_reply(self, msg) -> None:
        corr = getattr(msg.properties, "CorrelationData", None) if msg.properties else None
        if corr is None:
            return
        with self._mu:
            slot = self._replies.get(bytes(corr))
        if slot is not None and slot[0] is None:
            slot[0] = parse_json_object(msg.payload) or {"ok": False, "code": "internal",
                                                          "message": "unreadable reply"}
            # Wakes only the thread waiting for this reply.
            slot[1].set()

    def _on_status(self, st: Optional[dict]) -> None:
        with self._mu:
            self._status = st
            if not st or st.get("state") != "online":
                self._cv.notify_all()
                return
            if is_ms(st.get("idle_timeout")):
                self._idle_timeout_ms = st["idle_timeout"]
            epoch = st.get("epoch")
            if type(epoch) is int:
                prev = self._epoch
                self._epoch = epoch
                # A coordinator that (re)started may have lost requests sent
                # while it was down: ask again. The first status after a
                # connect needs nothing: _on_connect already asked.
                if prev is not None and epoch > prev:
                    for h in list(self._handles.values()):
                        self._send_acquire(h, resync=True)
            self._cv.notify_all()

    def _on_owner(self, lock_id: str, payload: bytes) -> None:
        with self._mu:
            h = self._handles.get(lock_id)
            if h is None:
                return
            obj = parse_json_object(payload) if payload else None
            if obj is not None and obj.get("v") != PROTOCOL:
                return
            try:
                st = LockState.parse(lock_id, obj) if obj else LockState(lock=lock_id)
            except ValueError:
                return
            h._owner = st
            # Activity is not answered: the new deadline shows here. Only a
            # later deadline for our own token counts.
            if (h._state == HELD and st.owner is not None and st.owner.client == self.client_id
                    and st.token == h._token and st.idle_deadline is not None
                    and h._idle_deadline is not None and st.idle_deadline > h._idle_deadline):
                h._idle_deadline = st.idle_deadline
                h._warning = None
            self._cv.notify_all()

    def _on_event(self, ev: Optional[dict]) -> None:
        if not ev or not isinstance(ev.get("event"), str):
            return
        with self._mu:
            if is_ms(ev.get("now")):
                self._offset_ms = ev["now"] - _wall_ms()
            lock_id = ev.get("lock")
            h = self._handles.get(lock_id) if isinstance(lock_id, str) else None
            if h is None:
                # Events of a lock without a live handle: every handle that
                # ends sends a release, handled after whatever caused these.
                if ev["event"] == "error":
                    log.warning("mqlock %s: refused: %s %s", self.client_id,
                                ev.get("code"), ev.get("message"))
                return
            kind = ev["event"]
            resync = h._resync
            if kind in ("granted", "queued", "error"):
                h._resync = False
            if kind == "granted":
                self._on_granted(h, ev, resync)
            elif kind == "queued":
                self._on_queued(h, ev, resync)
            elif kind == "busy":
                if h._state == PENDING:
                    self._finish(h, BUSY)
            elif kind == "revoked":
                if h._state == HELD and ev.get("token") == h._token:
                    reason = ev.get("reason") if isinstance(ev.get("reason"), str) else "revoked"
                    msg = ev.get("message") if isinstance(ev.get("message"), str) else ""
                    self._lose(h, reason, msg or f"the coordinator revoked the lock ({reason})")
            elif kind == "dropped":
                if h._state in (PENDING, WAITING):
                    reason = ev.get("reason") if isinstance(ev.get("reason"), str) else ""
                    self._lose(h, "dropped", f"removed from the queue ({reason})")
            elif kind == "idle-warning":
                if h._state == HELD and is_ms(ev.get("deadline")):
                    h._warning = ev["deadline"]
                    if self._activity != 0:
                        h._next_activity = time.monotonic()
            elif kind == "error":
                code = ev.get("code") if isinstance(ev.get("code"), str) else "internal"
                message = ev.get("message") if isinstance(ev.get("message"), str) else ""
                if h._state == PENDING:
                    h._error = Refused(message or code, code=code, lock=h.lock_id)
                    self._finish(h, FAILED)
                else:
                    log.warning("mqlock %s: %s refused: %s %s", self.client_id, h.lock_id,
                                code, message)
            self._cv.notify_all()

    def _on_granted(self, h: Held, ev: dict, resync: bool) -> None:
        token, deadline = ev.get("token"), ev.get("idle_deadline")
        if not is_ms(token) or not is_ms(deadline) or token <= h._stale_up_to:
            return
        if h._state in (PENDING, WAITING):
            h._state = HELD
            h._token = token
            h._idle_deadline = deadline
            h._warning = None
            h._position = None
            if is_ms(ev.get("now")) and self._idle_timeout_ms is None:
                self._idle_timeout_ms = max(deadline - ev["now"], 1000)
            h._next_activity = self._activity_due()
        elif h._state == HELD:
            if token != h._token and resync:
                # Re-sent after a reconnect or a new epoch, answered with a new
                # grant: the old one was revoked while we could not hear it.
                self._lose(h, "disconnect", "the lock was lost while the connection was down")
                self._publish_request(h.lock_id, "release")
            elif token > h._token:
                # The first grant answered an earlier handle; this one is ours.
                h._token = token
                h._idle_deadline = deadline
                h._warning = None
            elif token == h._token and deadline > (h._idle_deadline or 0):
                h._idle_deadline = deadline
                h._warning = None

    def _on_queued(self, h: Held, ev: dict, resync: bool) -> None:
        pos = ev.get("position")
        if type(pos) is not int or pos < 1:
            return
        if h._state in (PENDING, WAITING):
            h._state = WAITING
            h._position = pos
        elif h._state == HELD and resync:
            self._lose(h, "disconnect", "the lock was lost while the connection was down")
            self._publish_request(h.lock_id, "release")

    # --- requests ------------------------------------------------------------

    def _publish_request(self, lock_id: str, op: str, extra: Optional[dict] = None,
                         properties: Optional[Properties] = None):
        """Publish one request on the bound topic; None when not connected
        (the caller's intent is re-sent on the next connect)."""
        if not self._connected or self._paho is None:
            return None
        body = {"op": op, "client": self.client_id, "session": self.session,
                "conn": self.conn, "user": self.user}
        if extra:
            body.update(extra)
        return self._paho.publish(
            self._topic(lock_id, "request", self.client_id),
            json.dumps(body, separators=(",", ":")), qos=1, retain=False,
            properties=properties,
        )

    def _send_acquire(self, h: Held, resync: bool) -> None:
        extra: dict = {}
        if not h._wait:
            extra["wait"] = False
        if h._takeover:
            extra["takeover"] = True
        ticket = self._current_ticket()
        if ticket is not None:
            extra["ticket"] = ticket
        h._resync = resync and h._state == HELD
        self._publish_request(h.lock_id, "acquire", extra)

    def _current_ticket(self) -> Optional[str]:
        src = self._ticket
        if src is None or isinstance(src, str):
            return src
        try:
            t = src(self.client_id)
        except Exception:
            log.exception("mqlock %s: the ticket function failed", self.client_id)
            return None
        return t if isinstance(t, str) else None

    def _request_reply(self, lock_id: str, body: dict, end: float) -> dict:
        corr = random_hex(8).encode("ascii")
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = f"{self._reply_base}/q"
        props.CorrelationData = corr
        slot: List[Any] = [None, threading.Event()]
        payload = json.dumps(body, separators=(",", ":"))
        topic = self._topic(lock_id, "request", self.client_id)
        with self._mu:
            self._replies[corr] = slot
        try:
            with self._mu:
                while not (self._connected and self._paho is not None):
                    left = end - time.monotonic()
                    if left <= 0 or self._closed:
                        raise Unavailable("no connection to the broker", lock=lock_id)
                    self._cv.wait(left)
                self._paho.publish(topic, payload, qos=1, properties=props)
            if not slot[1].wait(max(end - time.monotonic(), 0)) or slot[0] is None:
                raise Unavailable(
                    "no answer from the coordinator"
                    + (" (it is offline)" if self._coordinator_offline() else ""),
                    lock=lock_id)
            return slot[0]
        finally:
            with self._mu:
                del self._replies[corr]

    def _coordinator_offline(self) -> bool:
        return self._status is not None and self._status.get("state") != "online"

    @staticmethod
    def _refusal(reply: dict, lock_id: str) -> MqlockError:
        code = reply.get("code") if isinstance(reply.get("code"), str) else "internal"
        message = reply.get("message") if isinstance(reply.get("message"), str) else ""
        return Refused(message or code, code=code, lock=lock_id)

    def _touch(self, h: Held) -> None:
        self._check_pid()
        with self._mu:
            self._check_fence(h)
            if h._state != HELD:
                return
            self._publish_request(h.lock_id, "activity")
            h._next_activity = self._activity_due()

    def _release(self, h: Held, timeout: Optional[float], collect: bool = False):
        if os.getpid() != self._pid:
            raise ForkedError("a lock of another process cannot be released here")
        with self._mu:
            info = None
            if self._handles.get(h.lock_id) is h:
                info = self._publish_request(h.lock_id, "release")
                if info is None and not self._closed:
                    self._to_release[h.lock_id] = None
            if h._state not in _FINAL:
                self._finish(h, RELEASED)
            self._cv.notify_all()
        self._run_callbacks()
        if collect:
            return info
        # On paho's own thread (a lost-lock callback) the acknowledgement
        # could never be read while we wait for it.
        pc = self._paho
        if info is not None and threading.current_thread() is not getattr(pc, "_thread", None):
            try:
                info.wait_for_publish(self.timeout if timeout is None else timeout)
            except (RuntimeError, ValueError):
                pass
        return None

    # --- state changes -------------------------------------------------------

    def _finish(self, h: Held, state: str) -> None:
        h._state = state
        h._warning = None
        h._position = None
        h._next_activity = None
        if h._token is not None and h._token > self._ended_tokens.get(h.lock_id, -1):
            self._ended_tokens[h.lock_id] = h._token
        if self._handles.get(h.lock_id) is h:
            del self._handles[h.lock_id]
            if self._connected and self._paho is not None and not self._closed:
                self._paho.unsubscribe(self._topic(h.lock_id, "owner"))
        self._cv.notify_all()

    def _lose(self, h: Held, code: str, message: str, local: bool = False) -> None:
        h._lost = LockLost(message, code=code, lock=h.lock_id, token=h._token, local=local)
        self._finish(h, LOST)
        callbacks, h._lost_callbacks = h._lost_callbacks, []
        lost = h._lost
        for fn in callbacks:
            self._callbacks.append(lambda fn=fn: fn(h, lost))
        log.info("mqlock %s: lost %s (%s)", self.client_id, h.lock_id, code)

    def _run_callbacks(self) -> None:
        with self._mu:
            todo, self._callbacks = self._callbacks, []
        for fn in todo:
            try:
                fn()
            except Exception:
                log.exception("mqlock %s: a lost-lock callback failed", self.client_id)

    def _check_fence(self, h: Held) -> None:
        """Fence `h` once the deadline of its idle warning has passed by the
        coordinator's clock. The coordinator revokes for idleness no earlier
        than one warning period after it warned (topics.md, "Idle timeout"),
        so without a warning there is nothing to fence."""
        if h._state == HELD and h._warning is not None:
            if self.coordinator_now() >= h._warning:
                self._lose(h, "idle", "the idle deadline passed without activity", local=True)
                self._publish_request(h.lock_id, "release")

    def _activity_due(self) -> Optional[float]:
        if self._activity == 0:
            return None
        if self._activity is not None:
            every = self._activity
        elif self._idle_timeout_ms is not None:
            every = max(self._idle_timeout_ms / 3000.0, 0.5)
        else:
            every = 60.0
        return time.monotonic() + every

    def _grace_s(self) -> float:
        st = self._status
        if st and is_ms(st.get("grace")):
            return st["grace"] / 1000.0
        return self._grace_default

    def _timer_main(self) -> None:
        while True:
            with self._mu:
                if self._closed:
                    return
                now = time.monotonic()
                due: List[float] = [now + 5.0]
                if not self._connected and self._down_since is not None and self._ever_connected:
                    expire = self._down_since + self._grace_s()
                    if now >= expire:
                        for h in list(self._handles.values()):
                            if h._state == HELD:
                                self._lose(h, "offline-expired",
                                           "no connection to the lock service for longer than"
                                           " its grace period", local=True)
                    else:
                        due.append(expire)
                for h in list(self._handles.values()):
                    if h._state != HELD:
                        continue
                    self._check_fence(h)
                    if h._state != HELD:
                        continue
                    if h._warning is not None:
                        left = (h._warning - self.coordinator_now()) / 1000.0
                        due.append(now + max(left, 0.0))
                    if h._next_activity is not None:
                        if now >= h._next_activity:
                            if self._connected:
                                self._publish_request(h.lock_id, "activity")
                            h._next_activity = self._activity_due()
                        if h._next_activity is not None:
                            due.append(h._next_activity)
                wait = max(min(due) - time.monotonic(), 0.01)
                self._cv.wait(wait)
            self._run_callbacks()


class _Paho(paho.Client):
    """paho's client with a hook before every CONNECT it sends."""

    def __init__(self, before_connect: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._mqlock_before_connect = before_connect

    def reconnect(self):  # called by paho's loop for every connection attempt
        self._mqlock_before_connect()
        return super().reconnect()


class per_process:
    """One object per process, made by `factory` on first use in each process.

    ``backend = per_process(lambda: mqlock.Client(url))`` then
    ``backend.get().query("doc-1")``: a forked child (gunicorn workers,
    multiprocessing) gets its own client on first use and never touches the
    parent's connection; the parent's object is left alone in the child.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._pid: Optional[int] = None
        self._obj: Any = None
        self._mu = threading.Lock()
        # A lock held by another thread at fork time stays held in the child.
        if hasattr(os, "register_at_fork"):
            import weakref

            ref = weakref.ref(self)

            def _after_fork() -> None:
                me = ref()
                if me is not None:
                    me._mu = threading.Lock()

            os.register_at_fork(after_in_child=_after_fork)

    def get(self) -> Any:
        """This process's object, made now if there is none yet."""
        pid = os.getpid()
        obj = self._obj
        if self._pid == pid:
            return obj
        with self._mu:
            if self._pid != pid:
                self._obj = self._factory()
                self._pid = pid
            return self._obj

    def reset(self) -> None:
        """Forget this process's object (closing it first); the next get()
        makes a new one."""
        with self._mu:
            obj, pid = self._obj, self._pid
            self._obj, self._pid = None, None
        if obj is not None and pid == os.getpid() and hasattr(obj, "close"):
            obj.close()
