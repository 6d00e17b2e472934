"""mqlock: edit locks over MQTT, the Python client.

``Client`` holds locks for a service and asks the coordinator who holds a
lock (``query``); ``mint_ticket`` signs the tickets that tie a client to one
of the application's users; ``mqlock.django`` (imported only by Django
projects) puts both behind Django settings, a DRF permission and a fenced
save. The protocol is topics.md of the mqlock repository.
"""

from .client import DEFAULT_URL, PROTOCOL, Client, Held, per_process
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
    check_client_id,
    check_lock_id,
    client_id_problem,
    lock_id_problem,
    new_client_id,
)
from .state import Holder, LockState
from .tickets import load_key, mint_ticket

__version__ = "1.0.0"

__all__ = [
    "DEFAULT_URL",
    "PROTOCOL",
    "Busy",
    "Client",
    "ForkedError",
    "Held",
    "Holder",
    "LockLost",
    "LockState",
    "MqlockError",
    "Refused",
    "Timeout",
    "Unavailable",
    "check_client_id",
    "check_lock_id",
    "client_id_problem",
    "load_key",
    "lock_id_problem",
    "mint_ticket",
    "new_client_id",
    "per_process",
]
