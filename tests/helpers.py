"""Test helpers that talk to the real servers: publish, wait, run services in threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from psycopg.abc import Params
from psycopg.conninfo import make_conninfo

from shiptrack.config import Settings
from shiptrack.mqtturl import parse_mqtt_url

T = TypeVar("T")


def publish(mqtt_url: str, messages: list[tuple[str, bytes]], qos: int = 1,
            protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5) -> None:
    """Publish and wait until the broker has acknowledged every message (MQTT 5, or 3.1.1
    for a NATS MQTT listener)."""
    target = parse_mqtt_url(mqtt_url)
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=protocol,
                         client_id=f"pub-{os.getpid()}-{id(messages)}")
    client.max_inflight_messages_set(500)
    client.connect(target.host, target.port)
    client.loop_start()
    try:
        infos = [client.publish(t, p, qos=qos) for t, p in messages]
        for info in infos:
            info.wait_for_publish(timeout=60)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


def publish_until(mqtt_url: str, messages: list[tuple[str, bytes]], done: Callable[[], bool],
                  timeout: float = 30.0, interval: float = 0.5) -> None:
    """Publish ``messages`` again until ``done()``: for a consumer whose subscription may
    not exist yet (a message published before it would be lost)."""
    def sent_and_done() -> bool:
        publish(mqtt_url, messages)
        return done()

    wait_for(sent_and_done, timeout=timeout, interval=interval)


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0,
             interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = probe()
    assert value, f"condition not met within {timeout} s (last value {value!r})"
    return value


def query(db_url: str, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


@contextmanager
def cloned_database(admin_url: str, template: str, prefix: str = "shiptrack_t"
                    ) -> Iterator[str]:
    """A database of its own, cloned from the migrated ``template`` (the session's
    ``template_db``), dropped when the block ends; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'.encode())
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@contextmanager
def service_thread(run: Callable[[threading.Event, threading.Event], None], name: str,
                   start_timeout: float = 10, join_timeout: float = 15,
                   ) -> Iterator[threading.Event]:
    """Run a service (``run(stop, ready)``) in a thread until the block ends; yields its
    stop event. Its errors fail the test: before it is ready, and when it ends."""
    stop, ready = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run(stop, ready)
        except BaseException as exc:  # surfaced to the test below
            errors.append(exc)

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    try:
        wait_for(lambda: ready.is_set() or errors, timeout=start_timeout)
        assert not errors, errors
        yield stop
    finally:
        stop.set()
        thread.join(join_timeout)
    assert not errors, errors


@contextmanager
def running_ingest(settings: Settings) -> Iterator[threading.Event]:
    """Run the ingest service in a thread until the block ends."""
    from ingest.service import run

    with service_thread(lambda stop, ready: run(settings, stop, ready), "ingest-test") as stop:
        yield stop


@contextmanager
def running_api(settings: Settings, ready: bool = True) -> Iterator[str]:
    """Serve the API with uvicorn in a thread; yields its base URL (http://...) once it is
    ready (broker feed and schema; ``ready=False``: as soon as it listens)."""
    import uvicorn

    from api.app import create_app

    app = create_app(settings, settings.admin_token or "test-admin-token")
    # port 0: the kernel picks a free port at bind time (no race with other processes)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            ws_ping_interval=settings.ws_ping_seconds)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-test", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        if ready:
            wait_for(lambda: app.state.feed.connected, timeout=10)
            wait_for(lambda: app.state.schema == "ok", timeout=10)
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


def ingest_process(settings: Settings, metrics_port: int = 0) -> subprocess.Popen[bytes]:
    """``shiptrack ingest`` as its own process (killable with SIGKILL), with ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {
        "SHIPTRACK_DATABASE_URL": settings.database_url or "",
        "SHIPTRACK_MQTT_URL": settings.mqtt_url or "",
        "SHIPTRACK_MQTT_TOPIC_PREFIX": settings.mqtt_topic_prefix,
        "SHIPTRACK_MQTT_CLIENT_ID": settings.mqtt_client_id,
        "SHIPTRACK_METRICS_PORT": str(metrics_port),
        "SHIPTRACK_MQTT_SHARED_GROUP": settings.mqtt_shared_group,
        "SHIPTRACK_INGEST_BATCH_SIZE": "500",
    }
    return subprocess.Popen([sys.executable, "-m", "shiptrack", "ingest"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A local HTTP server on a free loopback port, in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
