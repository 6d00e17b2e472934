"""Test harness: a real mosquitto and a real mqlockd on free 127.0.0.1 ports.

Used by the tests of clients/python and by the Django example's tests.
Binaries: MQLOCKD_BIN (default build/mqlockd of this repository),
MOSQUITTO_BIN (default mosquitto from PATH, else /usr/sbin/mosquitto).

    with Stack(grace=1, tickets=True) as stack:
        c = mqlock.Client(stack.url, ticket=stack.ticket_for("alice"))
        ...

Everything runs in a temporary directory that is removed afterwards; on
failure the caller prints stack.logs().
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "clients" / "python"))

import paho.mqtt.client as paho  # noqa: E402
from paho.mqtt.subscribeoptions import SubscribeOptions  # noqa: E402

import mqlock  # noqa: E402


def mqlockd_bin() -> str:
    return os.path.abspath(os.environ.get("MQLOCKD_BIN") or str(REPO / "build" / "mqlockd"))


def mosquitto_bin() -> str:
    if os.environ.get("MOSQUITTO_BIN"):
        return os.environ["MOSQUITTO_BIN"]
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `check()` every 20 ms until it returns something truthy; return
    it, or raise AssertionError naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Observer:
    """A plain MQTT 5 client that records every message on some filters."""

    def __init__(self, port: int, filters: List[str]) -> None:
        self.messages: List[Dict[str, Any]] = []
        self._mu = threading.Lock()
        self._ready = threading.Event()
        self._filters = filters
        self.client = paho.Client(
            client_id=f"obs-{mqlock.names.random_hex(6)}", protocol=paho.MQTTv5
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise AssertionError("observer could not subscribe")

    def _on_connect(self, c, u, flags, rc, props=None) -> None:
        c.subscribe([(f, SubscribeOptions(qos=1)) for f in self._filters])

    def _on_message(self, c, u, msg) -> None:
        try:
            obj = json.loads(msg.payload) if msg.payload else None
        except ValueError:
            obj = None
        with self._mu:
            self.messages.append(
                {"topic": msg.topic, "json": obj, "retain": bool(msg.retain), "at": time.time()}
            )

    def on(self, topic: str) -> List[Dict[str, Any]]:
        with self._mu:
            return [m for m in self.messages if m["topic"] == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Stack:
    """mosquitto + mqlockd. Options are mqlockd's flags in seconds; with
    `tickets` a ticket key is made and passed with --ticket-key (and
    --require-ticket when `tickets == "required"`)."""

    KEY = b"k" * 8 + os.urandom(24).hex().encode()

    def __init__(
        self,
        *,
        grace: float = 1,
        idle_timeout: float = 600,
        idle_warning: float = 60,
        keepalive: float = 2,
        tickets: Any = None,
        extra: Optional[List[str]] = None,
        ws: bool = False,
    ) -> None:
        self.opts = dict(grace=grace, idle_timeout=idle_timeout,
                         idle_warning=idle_warning, keepalive=keepalive)
        self.tickets = tickets
        self.extra = list(extra or [])
        self.dir = Path(tempfile.mkdtemp(prefix="mqlock-py-"))
        self.port = free_port()
        self.ws_port = free_port() if ws else None
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.key_file = self.dir / "ticket.key"
        self.key_file.write_bytes(self.KEY + b"\n")
        self.key_file.chmod(0o600)
        self.broker: Optional[subprocess.Popen] = None
        self.mqlockd: Optional[subprocess.Popen] = None
        self.watcher: Optional[Observer] = None

    # --- lifecycle -----------------------------------------------------------

    def __enter__(self) -> "Stack":
        try:
            self.start()
        except BaseException:
            sys.stderr.write(self.logs())
            self.stop()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            sys.stderr.write(self.logs())
        self.stop()

    def start(self) -> None:
        conf = [f"listener {self.port} 127.0.0.1", "socket_domain ipv4"]
        if self.ws_port:
            conf += [f"listener {self.ws_port} 127.0.0.1", "protocol websockets",
                     "socket_domain ipv4"]
        conf += [
            "allow_anonymous true",
            "set_tcp_nodelay true",
            "max_queued_messages 0",
            "max_inflight_messages 100",
            "persistence false",
            "log_type all",
            "log_timestamp_format %H:%M:%S",
            "",
        ]
        (self.dir / "mosquitto.conf").write_text("\n".join(conf))
        self.broker = self._spawn([mosquitto_bin(), "-c", str(self.dir / "mosquitto.conf")],
                                  "mosquitto.log")
        wait_for(lambda: self._alive(self.broker, "mosquitto") and port_open(self.port),
                 10, "mosquitto listening")
        self.watcher = Observer(self.port, ["locks/_coordinator/status"])
        self.start_mqlockd()

    def mqlockd_args(self) -> List[str]:
        o = self.opts
        args = [
            "--broker", f"tcp://127.0.0.1:{self.port}",
            "--db", str(self.dir / "mqlock.db"),
            "--grace", str(o["grace"]),
            "--idle-timeout", str(o["idle_timeout"]),
            "--idle-warning", str(o["idle_warning"]),
            "--keepalive", str(o["keepalive"]),
            "--log-level", "debug",
        ]
        if self.tickets:
            args += ["--ticket-key", str(self.key_file)]
            if self.tickets == "required":
                args.append("--require-ticket")
        return args + self.extra

    def start_mqlockd(self) -> dict:
        assert self.watcher is not None
        seen = len(self.online())
        self.mqlockd = self._spawn([mqlockd_bin()] + self.mqlockd_args(), "mqlockd.log")
        wait_for(lambda: self._alive(self.mqlockd, "mqlockd") and len(self.online()) > seen,
                 15, "mqlockd online (retained status)")
        return self.online()[-1]

    def stop_mqlockd(self, sig: int = signal.SIGTERM) -> None:
        self._stop(self.mqlockd, sig)

    def stop(self) -> None:
        if self.watcher is not None:
            try:
                self.watcher.close()
            except Exception:
                pass
        self._stop(self.mqlockd)
        self._stop(self.broker)
        shutil.rmtree(self.dir, ignore_errors=True)

    def online(self) -> List[dict]:
        assert self.watcher is not None
        return [m["json"] for m in self.watcher.on("locks/_coordinator/status")
                if m["json"] and m["json"].get("state") == "online"]

    def logs(self) -> str:
        out = []
        for name in ("mqlockd.log", "mosquitto.log"):
            p = self.dir / name
            out.append(f"---- {name} ----\n{p.read_text() if p.exists() else '(none)'}\n")
        return "".join(out)

    # --- helpers -------------------------------------------------------------

    def ticket_for(self, sub: str, name: Optional[str] = None, locks=None, ttl: float = 600):
        """A function minting tickets for user `sub` (for Client(ticket=...))."""
        return lambda client_id: mqlock.mint_ticket(
            self.KEY, sub=sub, name=name or sub, client=client_id, ttl=ttl, locks=locks)

    def client(self, **kw: Any) -> "mqlock.Client":
        kw.setdefault("timeout", 10)
        kw.setdefault("keepalive", 5)
        kw.setdefault("grace", self.opts["grace"])
        return mqlock.Client(self.url, **kw)

    def _spawn(self, argv: List[str], logname: str) -> subprocess.Popen:
        f = open(self.dir / logname, "ab")
        try:
            return subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                    stdout=f, stderr=subprocess.STDOUT)
        finally:
            f.close()

    def _alive(self, p: Optional[subprocess.Popen], what: str) -> bool:
        if p is None or p.poll() is not None:
            raise AssertionError(f"{what} exited ({p.returncode if p else None})\n{self.logs()}")
        return True

    @staticmethod
    def _stop(p: Optional[subprocess.Popen], sig: int = signal.SIGTERM) -> None:
        if p is None or p.poll() is not None:
            return
        p.send_signal(sig)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
