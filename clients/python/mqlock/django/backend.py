"""The backend's connection to the broker: one per process, made on first use.

Nothing connects at import or in ``AppConfig.ready()``: runserver's
autoreloader parent process never serves a request and so never connects,
and a process forked after the first use (gunicorn workers with
``--preload``, multiprocessing) makes its own connection on its first query
instead of writing into the parent's socket (:class:`mqlock.per_process`).
"""

from __future__ import annotations

from mqlock import Client, LockState, per_process

from . import conf


def _make() -> Client:
    return Client(
        conf.get("BROKER_URL"),
        prefix=conf.get("PREFIX"),
        reply_prefix=conf.get("REPLY_PREFIX"),
        client_id_prefix="django",
        username=conf.get("BROKER_USERNAME"),
        password=conf.read_secret(conf.get("BROKER_PASSWORD_FILE"), "BROKER_PASSWORD_FILE"),
        cafile=conf.get("BROKER_CAFILE"),
        keepalive=int(conf.get("KEEPALIVE")),
        timeout=float(conf.get("QUERY_TIMEOUT")),
    )


_client = per_process(_make)


def client() -> Client:
    """This process's :class:`mqlock.Client`, configured from settings."""
    return _client.get()


def lock_state(lock_id: str) -> LockState:
    """Who holds `lock_id` now, asked of the coordinator (``query``).

    Raises :class:`mqlock.Unavailable` when the broker or the coordinator
    does not answer within ``QUERY_TIMEOUT``.
    """
    return client().query(lock_id, timeout=float(conf.get("QUERY_TIMEOUT")))


def reset() -> None:
    """Close this process's connection; the next query makes a new one."""
    _client.reset()
