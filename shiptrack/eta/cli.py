"""``shiptrack eta-eval`` and ``shiptrack eta-convert``: typer commands, registered by the
main CLI. Heavy imports (numpy, h3, gpxpy) happen inside the commands."""

from __future__ import annotations

import gzip
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console

if TYPE_CHECKING:
    from shiptrack.eta.evaluate import Report
    from shiptrack.eta.trips import Trip

GZIP_MAGIC = b"\x1f\x8b"
MAX_SHOWN = 5  # unusable lines listed one by one; the rest are counted


class Source(StrEnum):
    sim = "sim"
    gpx = "gpx"


def _fail(err: Console, message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=2)


def _load(path: Path, err: Console) -> list[Trip]:
    from shiptrack.eta.trips import TripError, read_trips

    try:
        with (sys.stdin if str(path) == "-" else open_text(path)) as f:
            parsed = list(read_trips(f))
    except (OSError, EOFError) as exc:
        raise _fail(err, f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
                    ) from exc
    except UnicodeDecodeError as exc:
        raise _fail(err, f"{path} is not UTF-8 text") from exc
    problems = [p for p in parsed if isinstance(p, TripError)]
    for problem in problems[:MAX_SHOWN]:
        err.print(f"skipped {problem}", highlight=False, markup=False)
    if len(problems) > MAX_SHOWN:
        err.print(f"skipped {len(problems) - MAX_SHOWN} more unusable lines", highlight=False)
    trips = [t for t in parsed if not isinstance(t, TripError)]
    if not trips:
        raise _fail(err, f"no usable trips in {path}")
    return trips


def open_text(path: Path) -> TextIO:
    """A trips file as text: gzipped (by its magic bytes, whatever its name) or plain."""
    with path.open("rb") as f:
        gzipped = f.read(2) == GZIP_MAGIC
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


def eta_eval(
    trips: Annotated[Path, typer.Argument(
        help="Trips, one JSON object a line (SPEC: ETA evaluation), plain or gzipped; "
             "- reads stdin.")],
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print the SPEC's JSON object instead of a table.")] = False,
    routes: Annotated[bool, typer.Option(
        "--routes/--no-routes", help="Use the trips' routes (else great circle x detour).")
    ] = True,
    device_context: Annotated[bool, typer.Option(
        "--device-context/--no-device-context",
        help="Carry a device's driving hours from trip to trip (trips with a device_id).")
    ] = True,
    train_fraction: Annotated[float, typer.Option(
        min=0.0, max=0.9, help="Share of the earliest trips used for learning only.")] = 0.0,
    save_history: Annotated[Path | None, typer.Option(
        help="Then learn from every trip and write the history (for ingest) here.")] = None,
) -> None:
    """Replay recorded trips through the ETA and report its accuracy next to baselines."""
    from shiptrack.eta.evaluate import Replay

    err = Console(stderr=True)
    loaded = _load(trips, err)
    replay = Replay(routes, device_context, train_fraction)
    report = replay.run(loaded)
    if save_history is not None:
        replay.learn_all()
        replay.history.save(save_history)
    if json_out:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
    else:
        _table(report, sys.stdout)


def _table(report: Report, out: TextIO) -> None:
    from shiptrack.eta.evaluate import CHECKPOINTS, MODELS

    def row(label: str, values: list[float | None], fmt: str) -> str:
        cells = "".join(f"{'-' if v is None else format(v, fmt):>9}" for v in values)
        return f"  {label:<26}{cells}\n"

    kept = f" (after {report.learning_only} for learning only)" if report.learning_only else ""
    out.write(f"eta-eval: {report.trips} trips{kept}; each ETA learned only from trips "
              "that arrived before it departed\n")
    out.write(f"  {'checkpoint (% of trip)':<26}" + "".join(f"{k:>8}%" for k in CHECKPOINTS)
              + "\n")
    out.write("mean absolute error, minutes\n")
    for model in MODELS:
        out.write(row(model, [report.mae_min(model, k) for k in CHECKPOINTS], ".1f"))
    out.write("shiptrack 80% interval\n")
    out.write(row("coverage", [report.coverage(k) for k in CHECKPOINTS], ".2f"))
    out.write(row("median width, hours", [report.median_width_h(k) for k in CHECKPOINTS],
                  ".2f"))


def eta_convert(
    files: Annotated[list[Path], typer.Argument(help="Input files.")],
    source: Annotated[Source, typer.Option(
        "--from", help="sim: `shiptrack simulate --trips/--truth` output; gpx: GPX files.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Convert recorded trips to eta-eval input (one JSON trip a line)."""
    from shiptrack.eta.convert import ConvertError, dumps, from_gpx, from_sim

    err = Console(stderr=True)
    try:
        if source is Source.sim:
            converted = list(from_sim(_lines(files)))
        else:
            converted = [trip for path in files for trip in from_gpx(path)]
    except ConvertError as exc:
        raise _fail(err, str(exc)) from exc
    except OSError as exc:
        raise _fail(err, f"cannot read {exc.filename}: {exc.strerror}") from exc
    out = output.open("w", encoding="utf-8") if output is not None else sys.stdout
    try:
        for trip in converted:
            out.write(dumps(trip) + "\n")
    finally:
        if output is not None:
            out.close()
    err.print(f"eta-convert: {len(converted)} trips", highlight=False)


def _lines(files: list[Path]) -> list[str]:
    lines: list[str] = []
    for path in files:
        with path.open(encoding="utf-8") as f:
            lines.extend(f)
    return lines


def eta_learn(
    database_url: Annotated[str | None, typer.Option(
        help="overrides SHIPTRACK_DATABASE_URL")] = None,
    since: Annotated[datetime | None, typer.Option(
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        help="Learn only from positions (and trips starting) at or after this time "
             "(ISO 8601; UTC without an offset).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Write the history here (default: SHIPTRACK_ETA_HISTORY, else "
             "<data dir>/eta-history.json).")] = None,
) -> None:
    """Learn the ETA's history (speed profile, rests, detour, calibration) from the
    stored positions and delivered shipments, and write it for ingest."""
    import psycopg

    from shiptrack.config import load_settings
    from shiptrack.eta.learn import learn, save
    from shiptrack.paths import data_dir

    err = Console(stderr=True)
    settings = load_settings(database_url=database_url)
    if not settings.database_url:
        raise _fail(err, "no database: set SHIPTRACK_DATABASE_URL or pass --database-url")
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    path = out or (Path(settings.eta_history) if settings.eta_history
                   else data_dir(settings) / "eta-history.json")
    try:
        with psycopg.connect(settings.database_url) as conn:
            history, summary = learn(conn, since)
    except psycopg.Error as exc:
        raise _fail(err, f"database: {exc}") from exc
    try:
        save(history, path)
    except OSError as exc:
        raise _fail(err, f"cannot write {path}: {exc.strerror or exc}") from exc
    err.print(f"eta-learn: {summary.positions} positions of {summary.devices} devices, "
              f"{summary.trips} finished trips -> {path}", highlight=False)
