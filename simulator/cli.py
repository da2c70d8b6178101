"""``shiptrack simulate``: a typer command, registered by the main CLI.

Standalone: ``python -m simulator --devices 5`` (see ``simulator/__main__.py``).
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live

from shiptrack.config import load_settings
from shiptrack.errors import ConfigError, ShiptrackError
from shiptrack.mqtturl import parse_mqtt_url
from shiptrack.paths import running_up
from simulator.cities import CITIES
from simulator.clock import start_in_past
from simulator.fleet import Fleet, FleetConfig
from simulator.load import LoadPlan, LoadStats, run_load
from simulator.provision import Api, Provisioner
from simulator.publisher import Stats, run
from simulator.scenarios import SCENARIOS, Scenario
from simulator.tracker import owntracks_topic
from simulator.truth import Record, TruthFiles

app = typer.Typer(add_completion=False, help="Drive a simulated fleet of GPS trackers over MQTT.")



class ScenarioName(StrEnum):
    fleet = "fleet"
    demo = "demo"
    cold_chain = "cold-chain"
    chaos = "chaos"
    load = "load"

PREFIXES = {"fleet": "sim-", "demo": "demo-", "cold-chain": "reefer-", "chaos": "chaos-",
            "load": "load-"}


class Format(StrEnum):
    spec = "spec"
    owntracks = "owntracks"


@dataclass
class Stopper:
    """What ends a run early: ``event`` is set by SIGTERM or Ctrl-C; ``interrupted`` says
    Ctrl-C did it."""

    event: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False


@contextmanager
def stop_on_signals() -> Iterator[Stopper]:
    """SIGTERM (``docker stop``) and the first Ctrl-C set an event that the run checks
    between ticks, so it ends as cleanly either way. A KeyboardInterrupt raised wherever
    the main thread happens to be (inside paho's publish, holding one of its locks) could
    leave the lock held and the disconnect waiting on it for ever. A second Ctrl-C raises
    KeyboardInterrupt as usual (it cuts the wait for the last acknowledgements short)."""
    stop = Stopper()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_term(signum: int, frame: object) -> None:
        stop.event.set()

    def on_int(signum: int, frame: object) -> None:
        stop.interrupted = True
        stop.event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    handlers: dict[int, Any] = {signal.SIGTERM: on_term}
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # an ignored Ctrl-C stays so
        handlers[signal.SIGINT] = on_int
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():  # None: not set from Python, the default
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _fail(err: Console, message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(code=code)


def _rate(what: str) -> Any:
    return typer.Option(min=0.0, max=1.0, show_default=False, help=f"Fault rate: {what}.")


def simulate(
    scenario: Annotated[ScenarioName, typer.Option(
        help="What to simulate (docs: simulator/scenarios.py).")] = ScenarioName.fleet,
    devices: Annotated[int | None, typer.Option(
        "--devices", "-n", min=1, help="Number of simulated devices.")] = None,
    interval: Annotated[float | None, typer.Option(
        help="Simulated seconds between two fixes of a moving device.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same fixes.")] = 1,
    speed: Annotated[float | None, typer.Option(
        help="Time factor: 60 plays an hour in a minute (the clock then starts in the "
             "past, see docs/DESIGN.md).")] = None,
    start: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"],
        help="Simulated start (UTC if no offset; not in the future): with --seed, the same "
             "bytes every run. Default: now, or in the past when sped up.")] = None,
    duration: Annotated[float | None, typer.Option(
        help="Stop after this many wall-clock seconds.")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many ticks.")] = None,
    trips: Annotated[int | None, typer.Option(
        "--trips-per-truck", min=1, help="Each truck parks after this many trips; the run "
        "ends when all have (plus --park-s).")] = None,
    park_s: Annotated[float, typer.Option(
        help="With --trips-per-truck: simulated seconds parked before the run ends.")
    ] = 1800.0,
    max_leg_km: Annotated[float | None, typer.Option(
        help="Only destinations at most this far by road.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Payload format.")] = Format.spec,
    adaptive: Annotated[bool | None, typer.Option(
        "--adaptive/--fixed", help="Report less often while standing.", show_default=False)
    ] = None,
    qos: Annotated[int, typer.Option(min=0, max=1, help="MQTT QoS.")] = 1,
    offline_rate: Annotated[float | None, _rate("per fix, an offline period starts")] = None,
    duplicate_rate: Annotated[float | None, _rate("per message, sent twice")] = None,
    skew_rate: Annotated[float | None, _rate("share of devices with a skewed clock")] = None,
    malformed_rate: Annotated[float | None, _rate("per message, broken bytes")] = None,
    reboot_rate: Annotated[float | None, _rate("per fix, a reboot (seq from 1)")] = None,
    outlier_rate: Annotated[float | None, _rate("per fix, a GPS outlier")] = None,
    truth: Annotated[Path | None, typer.Option(help="Write the ground truth (JSON lines).")
                     ] = None,
    trips_file: Annotated[Path | None, typer.Option(
        "--trips", help="Write completed trips in the eta-eval input form.")] = None,
    device_prefix: Annotated[str | None, typer.Option(help="Device ids start with this.")
                             ] = None,
    rate: Annotated[float, typer.Option(help="load: target messages/s, all processes.")
                    ] = 5000.0,
    processes: Annotated[int, typer.Option(min=1, help="load: worker processes.")] = 2,
    api_url: Annotated[str | None, typer.Option(
        help="API for the demo's shipments. Default: http://SHIPTRACK_HTTP_HOST:PORT.")
    ] = None,
    token: Annotated[str | None, typer.Option(
        envvar="SHIPTRACK_ADMIN_TOKEN",
        help="Bearer token for the API. Default: the one a local `shiptrack up` made.")] = None,
    no_api: Annotated[bool, typer.Option(
        "--no-api", help="Do not create geofences and shipments.")] = False,
    mqtt_url: Annotated[str | None, typer.Option(
        envvar="SHIPTRACK_MQTT_URL", help="mqtt://user:pass@host:port (mqtts:// for TLS). "
        "Default: the embedded broker of a running `shiptrack up` (same data dir).")
    ] = None,
    topic_prefix: Annotated[str, typer.Option(
        envvar="SHIPTRACK_MQTT_TOPIC_PREFIX", help="Prefix before every topic.")] = "",
) -> None:
    """Publish a simulated fleet to the broker (SPEC topics and payloads)."""
    err = Console(stderr=True)
    name = scenario.value
    sc = SCENARIOS[name]
    interval = interval if interval is not None else sc.interval_s
    speed = speed if speed is not None else sc.speed
    if interval <= 0 or speed <= 0 or (duration is not None and duration <= 0) or rate <= 0:
        raise _fail(err, "--interval, --speed, --duration and --rate must be positive")
    local_url, local_token = running_up(load_settings())
    mqtt_url, token = mqtt_url or local_url, token or local_token
    if not mqtt_url:
        raise _fail(err, "no broker: pass --mqtt-url or set SHIPTRACK_MQTT_URL (or run "
                    "`shiptrack up`, whose broker is found by itself)")
    try:
        target = parse_mqtt_url(mqtt_url)
    except ConfigError as exc:
        raise _fail(err, str(exc)) from exc
    prefix = device_prefix if device_prefix is not None else PREFIXES[name]
    n = devices or sc.devices
    if name == "load":
        plan = LoadPlan(target, n, rate, duration or 10.0, processes, qos, topic_prefix, seed,
                        prefix)
        _report_load(_load_with_progress(plan, err))
        return
    config = _fleet_config(sc, interval, adaptive, fmt, trips, max_leg_km, prefix, {
        "offline_rate": offline_rate, "duplicate_rate": duplicate_rate,
        "skew_rate": skew_rate, "malformed_rate": malformed_rate,
        "reboot_rate": reboot_rate}, outlier_rate)
    fleet = Fleet(n, seed=seed, hubs=CITIES if sc.europe else None, config=config)
    provisioner = None
    if sc.provision and not no_api:
        if not token:
            raise _fail(err, f"{name} creates shipments through the API: pass --token or set "
                        "SHIPTRACK_ADMIN_TOKEN (or --no-api)")
        owntracks = fmt is Format.owntracks
        ids = {d: owntracks_topic(d).replace("/", ".") if owntracks else d
               for d in fleet.device_ids}
        provisioner = Provisioner(Api(api_url or _default_api_url(), token),
                                  f"SIM-{uuid.uuid4().hex[:6]}-", ids)
    now = datetime.now(UTC)
    if start is not None:
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        if start > now:
            raise _fail(err, "--start must not be in the future (ingest rejects such fixes)")
    else:
        start = start_in_past(now, speed, _span_s(sc, config, speed, duration, count, park_s))
    files = TruthFiles(truth, trips_file)

    def on_tick(now: datetime) -> None:
        records: list[Record] = fleet.truth.drain()
        if provisioner is not None:
            provisioner.handle(records)
        files.write(records)

    try:
        with stop_on_signals() as stop:
            stats = run(target, fleet, interval, topic_prefix=topic_prefix, duration_s=duration,
                        count=count, speed=speed, stop_event=stop.event, start_time=start,
                        qos=qos, on_tick=on_tick,
                        until=(lambda: fleet.done(park_s)) if trips else None)
        if stop.interrupted:
            stats = replace(stats, interrupted=True)
    except ShiptrackError as exc:
        raise _fail(err, str(exc), code=1) from exc
    finally:
        files.write(fleet.truth.drain())
        files.close()
    _report(stats, n)


def _fleet_config(sc: Scenario, interval: float, adaptive: bool | None, fmt: Format,
                  trips: int | None, max_leg_km: float | None, prefix: str,
                  fault_rates: dict[str, Any], outlier_rate: float | None
                  ) -> FleetConfig:
    tracker = replace(sc.tracker, interval_s=interval, format=fmt.value)
    if adaptive is not None:
        tracker = replace(tracker, adaptive=adaptive)
    if outlier_rate is not None:
        tracker = replace(tracker, outlier_rate=outlier_rate)
    faults = replace(sc.faults, **{k: v for k, v in fault_rates.items() if v is not None})
    return FleetConfig(tracker=tracker, faults=faults, sensors=sc.sensors,
                       hub_dwell_s=sc.hub_dwell_s, start_at_hub=sc.start_at_hub, trips=trips,
                       max_leg_km=max_leg_km or sc.max_leg_km, device_prefix=prefix)


def _span_s(sc: Scenario, config: FleetConfig, speed: float, duration: float | None,
            count: int | None, park_s: float) -> float:
    # the earliest of: --duration at --speed, --count ticks, --trips-per-truck trips done
    """Simulated seconds the run is expected to cover: where its clock starts (clock.py)."""
    spans = []
    if duration:
        spans.append(duration * speed)
    if count:
        spans.append(count * config.tracker.interval_s)
    if config.trips:  # generous: ending in the past is harmless, catching up early is slow
        leg_km = config.max_leg_km or 1000.0
        leg_h = leg_km / 60.0 + config.hub_dwell_s[1] / 3600 + 1.0
        daily_rests = int(config.trips * leg_km / 70.0 // 9)  # 11 h after 9 h of driving
        spans.append((config.trips * leg_h + 12.0 * daily_rests) * 3600 + park_s)
    return min(spans) if spans else sc.span_s


def _default_api_url() -> str:
    host = os.environ.get("SHIPTRACK_HTTP_HOST") or "127.0.0.1"
    port = os.environ.get("SHIPTRACK_HTTP_PORT") or "8000"
    return f"http://{host}:{port}"


def _report(stats: Stats, devices: int) -> None:
    Console().print(
        f"simulate: {devices} devices, {stats.sent} messages sent, {stats.acknowledged} "
        f"acknowledged in {stats.elapsed:.1f} s ({stats.rate:.1f} msg/s)"
        + (" [interrupted]" if stats.interrupted else ""),
        highlight=False, markup=False, soft_wrap=True,
    )


def _load_with_progress(plan: LoadPlan, err: Console) -> LoadStats:
    with Live(console=err, refresh_per_second=4, transient=False) as live:
        def progress(sent: int, acked: int, elapsed: float) -> None:
            rate = sent / elapsed if elapsed > 0 else 0.0
            live.update(f"load: {elapsed:5.1f}/{plan.duration_s:.0f} s  sent {sent:,}  "
                        f"acked {acked:,}  {rate:,.0f} msg/s (target {plan.rate:,.0f})")
        return run_load(plan, progress)


def _report_load(stats: LoadStats) -> None:
    acked = f"{stats.acknowledged:,}" if stats.qos else "n/a (QoS 0)"
    Console().print(
        f"load: sent {stats.sent:,}, acknowledged {acked}, in {stats.elapsed:.2f} s: "
        f"{stats.rate:,.0f} msg/s achieved of {stats.target_rate:,.0f} msg/s target",
        highlight=False, markup=False, soft_wrap=True,
    )
    for error in stats.errors:
        Console(stderr=True).print(f"error: {error}", highlight=False, markup=False)
    if stats.errors:
        raise typer.Exit(code=1)


def _register() -> None:
    app.command()(simulate)


_register()
