"""``shiptrack simulate``: a typer command, registered by the main CLI.

Standalone: ``python -m simulator --devices 5`` (see ``simulator/__main__.py``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from shiptrack.errors import ConfigError
from shiptrack.mqtturl import parse_mqtt_url
from simulator.fleet import Fleet
from simulator.publisher import SimulatorError, run

app = typer.Typer(add_completion=False, help="Drive a simulated fleet of GPS trackers over MQTT.")


@contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """An event set by SIGTERM (``docker stop``), so the run ends as cleanly as on Ctrl-C."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def simulate(
    devices: Annotated[
        int, typer.Option("--devices", "-n", min=1, help="Number of simulated devices.")
    ] = 10,
    interval: Annotated[
        float, typer.Option(help="Simulated seconds between two fixes of a device.")
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same fleet.")] = 1,
    speed: Annotated[
        float, typer.Option(help="Time factor: 10 publishes a tick every interval/10 s.")
    ] = 1.0,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many wall-clock seconds.")
    ] = None,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many fixes per device.")
    ] = None,
    mqtt_url: Annotated[
        str | None,
        typer.Option(
            envvar="SHIPTRACK_MQTT_URL", help="mqtt://user:pass@host:port (mqtts:// for TLS)."
        ),
    ] = None,
    topic_prefix: Annotated[
        str,
        typer.Option(envvar="SHIPTRACK_MQTT_TOPIC_PREFIX", help="Prefix before every topic."),
    ] = "",
) -> None:
    """Publish moving devices to the broker (SPEC topics and payload, QoS 1)."""
    err = Console(stderr=True)
    if interval <= 0 or speed <= 0 or (duration is not None and duration <= 0):
        err.print("[red]error:[/] --interval, --speed and --duration must be positive")
        raise typer.Exit(code=2)
    if not mqtt_url:
        err.print("[red]error:[/] no broker: pass --mqtt-url or set SHIPTRACK_MQTT_URL")
        raise typer.Exit(code=2)
    try:
        target = parse_mqtt_url(mqtt_url)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=2) from exc
    fleet = Fleet(devices, seed=seed)
    try:
        with stop_on_sigterm() as stop:
            stats = run(
                target,
                fleet,
                interval,
                topic_prefix=topic_prefix,
                duration_s=duration,
                count=count,
                speed=speed,
                stop_event=stop,
            )
    except SimulatorError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(code=1) from exc
    Console().print(
        f"simulate: {devices} devices, {stats.sent} fixes sent, {stats.acknowledged} acknowledged"
        f" in {stats.elapsed:.1f} s ({stats.rate:.1f} msg/s)"
        + (" [interrupted]" if stats.interrupted else ""),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


app.command()(simulate)
