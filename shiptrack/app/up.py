"""``shiptrack up``: the whole system in one process tree.

Embedded PostgreSQL and broker (only where no URL is configured) run as child processes;
ingest and the simulator run as threads beside the API, so the API's ``/metrics``
covers ingest too. Ctrl-C stops the API, then the threads, then the servers.

It fails fast: the API's port is bound before anything starts, so a taken port is a one-line
error; whatever had started is stopped on any failure (the ExitStack). SIGTERM unwinds like
Ctrl-C from the first moment. After a SIGKILL the broker dies with us (PR_SET_PDEATHSIG)
and the next start reuses the still running embedded PostgreSQL.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import uvicorn
from rich.console import Console

from shiptrack.broker_auth import BrokerLogins, embedded_logins
from shiptrack.broker_identity import API_USER, INGEST_USER, SIMULATOR_USER
from shiptrack.config import Settings
from shiptrack.db.migrate import migrate, storage_mode
from shiptrack.embedded import EmbeddedBroker, EmbeddedPostgres, bind_listener, port_in_use
from shiptrack.embedded_nats import DEFAULT_PORT, EmbeddedNats
from shiptrack.mqtturl import parse_mqtt_url
from shiptrack.paths import admin_token, data_dir, tracking_key


def _start_nats(settings: Settings, stack: ExitStack, base: Path,
                 say: Callable[[str], object]) -> dict[str, object]:
    """``shiptrack up`` in NATS mode without SHIPTRACK_NATS_URL: an embedded nats-server
    (its MQTT listener on SHIPTRACK_EMBEDDED_MQTT_PORT when free); the settings to use."""
    mqtt_port = settings.embedded_mqtt_port
    server = EmbeddedNats(base / "nats", settings.partitions, settings.mqtt_topic_prefix,
                          port=None if port_in_use(DEFAULT_PORT) else DEFAULT_PORT,
                          mqtt_port=None if port_in_use(mqtt_port) else mqtt_port)
    from ingest.partitioned import prepare_stream

    stack.enter_context(server)
    server.start()
    prepare_stream(settings.model_copy(update={"nats_url": server.url}))
    say(f"embedded NATS JetStream ({settings.partitions} partitions): {server.url}, MQTT "
        f"for devices: {server.mqtt_url}")
    updates: dict[str, object] = {"nats_url": server.url}
    if not settings.mqtt_url:
        updates["mqtt_url"] = server.mqtt_url
    return updates


def _start_servers(settings: Settings, stack: ExitStack, console: Console,
                   simulate: int = 0) -> tuple[Settings, BrokerLogins | None]:
    base = data_dir(settings)
    updates: dict[str, object] = {}
    logins = None
    if settings.ingest_mode == "nats" and not settings.nats_url:
        updates |= _start_nats(settings, stack, base, console.print)
    if not settings.database_url:
        pg = stack.enter_context(EmbeddedPostgres(base / "postgres"))
        updates["database_url"] = pg.start()
        console.print(f"embedded PostgreSQL: data in {base / 'postgres'}")
    if not settings.mqtt_url and "mqtt_url" not in updates:
        broker = EmbeddedBroker(base / "broker", settings.embedded_mqtt_port, keep_port=True)
        logins = _broker_identity(settings, broker, base / "broker", simulate)
        stack.enter_context(broker)
        updates["mqtt_url"] = broker.start()
        note = "" if broker.port == settings.embedded_mqtt_port else (
            f" ({settings.embedded_mqtt_port} is taken; this port is kept for the next starts)")
        console.print(f"embedded MQTT broker ({broker.kind}): {updates['mqtt_url']}{note}",
                      soft_wrap=True, highlight=False)
        _say_identity(console, broker, logins)
        if logins is not None:
            updates["mqtt_dynsec"] = True
    return settings.model_copy(update=updates), logins


def _broker_identity(settings: Settings, broker: EmbeddedBroker, broker_dir: Path,
                     simulate: int) -> BrokerLogins | None:
    """Device identity on the embedded Mosquitto: the plugin on, service logins made, the
    simulated fleet's devices (and only those) allowed to its login."""
    if broker.kind != "mosquitto" or settings.mqtt_allow_anonymous:
        return None
    from simulator.fleet import Fleet

    simulated = Fleet(simulate, seed=1).device_ids if simulate > 0 else []
    simulated += demo_device_ids()  # the README's `shiptrack simulate --scenario demo`
    logins = embedded_logins(broker_dir, settings.mqtt_topic_prefix, simulated)
    broker.auth_lines = logins.lines
    broker.probe_login = (API_USER, logins.passwords[API_USER])
    return logins


def demo_device_ids() -> list[str]:
    """The device ids of the demo scenario's fleet (its default size), which the
    ``simulator`` login of ``shiptrack up`` may also publish as."""
    from simulator.cli import PREFIXES
    from simulator.scenarios import SCENARIOS

    return [f"{PREFIXES['demo']}{i:04d}" for i in range(1, SCENARIOS["demo"].devices + 1)]


def _say_identity(console: Console, broker: EmbeddedBroker, logins: BrokerLogins | None) -> None:
    if logins is not None:
        console.print("device identity: on (a device connects with its own credential: "
                      "POST /api/v1/devices/{id}/credentials)")
    elif broker.kind == "amqtt":
        console.print("[yellow]the embedded Python broker (amqtt) does not enforce device "
                      "identity: any client may publish as any device[/yellow]")
    else:
        console.print("[yellow]device identity off (SHIPTRACK_MQTT_ALLOW_ANONYMOUS)[/yellow]")


def _as(settings: Settings, logins: BrokerLogins | None, user: str) -> Settings:
    """``settings`` with the embedded broker's login of ``user`` (when identity is on)."""
    if logins is None or not settings.mqtt_url:
        return settings
    return settings.model_copy(update={"mqtt_url": logins.url(settings.mqtt_url, user)})


def _thread(stack: ExitStack, name: str, target: Callable[..., None], *args: object) -> None:
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    stack.callback(thread.join, 10)


def run_up(settings: Settings, simulate: int, stack: ExitStack, console: Console) -> None:
    from api.app import create_app
    from ingest.service import run as run_ingest

    if settings.ingest_mode == "nats":  # docs/SCALING.md
        from ingest.partitioned import run as run_ingest

    # SIGTERM unwinds the stack (stopping the servers) like Ctrl-C, from the first moment
    signal.signal(signal.SIGTERM, _exit_on_signal)
    listener = bind_listener(settings.http_host, settings.http_port, "the API",
                             "set SHIPTRACK_HTTP_PORT or --http-port")
    stack.callback(listener.close)
    settings, logins = _start_servers(settings, stack, console, simulate)
    assert settings.database_url and settings.mqtt_url
    applied = migrate(settings.database_url)
    console.print(f"database ready ({storage_mode(settings.database_url)}), "
                  f"{len(applied)} migration(s) applied")
    token, _ = admin_token(settings)
    settings = settings.model_copy(update={"tracking_key": tracking_key(settings)})
    stop = threading.Event()
    ingest_settings = _as(settings, logins, INGEST_USER).model_copy(update={"metrics_port": 0})
    _thread(stack, "ingest", run_ingest, ingest_settings, stop)
    if simulate > 0:
        _thread(stack, "simulator", _simulate, _as(settings, logins, SIMULATOR_USER), simulate,
                stop)
    stack.callback(stop.set)  # registered last, so it runs first: then the threads join
    app = create_app(_as(settings, logins, API_USER), token)
    base = f"http://{settings.http_host}:{settings.http_port}"
    console.print(
        f"\n[bold green]shiptrack is up[/bold green]\n"
        f"  dispatcher dashboard: {base}/#token={token}\n"
        f"  API:                  {base}/api/v1/devices  (Authorization: Bearer {token})\n"
        f"  OpenAPI:              {base}/docs\n"
        f"  fleet stream:         ws://{settings.http_host}:{settings.http_port}/ws/fleet"
        f"?token={token}\n"
        f"  MQTT:                 {settings.mqtt_url}  (topic shiptrack/v1/devices/<id>/position)\n"
        f"  demo fleet:           shiptrack simulate --scenario demo --mqtt-url "
        f"{settings.mqtt_url} --api-url {base} --token {token}\n"
        f"  admin token:          {token}\n"
        f"  Ctrl-C stops everything.\n",
        soft_wrap=True, highlight=False,
    )
    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port,
                            log_level="warning", ws_ping_interval=settings.ws_ping_seconds,
                ws_per_message_deflate=False)
    # uvicorn handles SIGINT/SIGTERM while serving, then re-raises the signal with the
    # previous handler (ours above for SIGTERM)
    uvicorn.Server(config).run(sockets=[listener])


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _simulate(settings: Settings, devices: int, stop: threading.Event) -> None:
    from simulator.fleet import Fleet
    from simulator.publisher import run

    assert settings.mqtt_url
    run(parse_mqtt_url(settings.mqtt_url), Fleet(devices, seed=1), 1.0,
        topic_prefix=settings.mqtt_topic_prefix, stop_event=stop)
