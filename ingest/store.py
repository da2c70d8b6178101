"""Writing a batch in one transaction: positions by binary COPY, devices' last position
(never backwards), dead letters. Duplicates (same device and ts) are dropped by the
primary key; the caller acknowledges the batch to the broker only after ``write``
returns, so a crash anywhere before loses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from ingest.outliers import LastFix
from shiptrack.fix import Fix, Rejection

STAGE_SQL = """
CREATE TEMP TABLE IF NOT EXISTS positions_in
    (LIKE positions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
POSITION_COLUMNS = (
    "device_id, ts, lat, lon, speed, heading, accuracy, alt, battery, seq, sensors, attrs, outlier"
)
POSITION_TYPES = [
    "text", "timestamptz", "float8", "float8", "float8", "float8", "float8", "float8",
    "float8", "int8", "jsonb", "jsonb", "bool",
]
INSERT_SQL = f"""
INSERT INTO positions ({POSITION_COLUMNS})
SELECT DISTINCT ON (device_id, ts) {POSITION_COLUMNS} FROM positions_in
ORDER BY device_id, ts
ON CONFLICT (device_id, ts) DO NOTHING
RETURNING device_id, ts
"""
DEVICE_COLUMNS = (
    "device_id, last_ts, lat, lon, speed, heading, accuracy, alt, battery, sensors, attrs"
)
DEVICE_TYPES = [
    "text", "timestamptz", "float8", "float8", "float8", "float8", "float8", "float8",
    "float8", "jsonb", "jsonb",
]
STAGE_DEVICES_SQL = """
CREATE TEMP TABLE IF NOT EXISTS devices_in
    (LIKE devices INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
UPSERT_DEVICES_SQL = f"""
INSERT INTO devices AS d ({DEVICE_COLUMNS}, last_received_at)
SELECT {DEVICE_COLUMNS}, now() FROM devices_in ORDER BY device_id
ON CONFLICT (device_id) DO UPDATE SET
    last_ts = excluded.last_ts, lat = excluded.lat, lon = excluded.lon,
    speed = excluded.speed, heading = excluded.heading, accuracy = excluded.accuracy,
    alt = excluded.alt, battery = excluded.battery, sensors = excluded.sensors,
    attrs = excluded.attrs, last_received_at = excluded.last_received_at
WHERE d.last_ts IS NULL OR d.last_ts < excluded.last_ts
"""
TOUCH_DEVICES_SQL = """
INSERT INTO devices (device_id, last_received_at)
SELECT id, now() FROM unnest(%s::text[]) AS t(id) ORDER BY id
ON CONFLICT (device_id) DO UPDATE SET last_received_at = now()
"""
DEAD_LETTER_COPY = (
    "COPY dead_letters (source, topic, reason, detail, payload, count) FROM STDIN"
)


@dataclass(slots=True)
class WriteResult:
    inserted: int
    duplicates: int


def month_start(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class PositionStore:
    """One connection; ``write`` is one transaction. Not thread-safe."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        self.conn = conn
        self._months: set[datetime] = set()
        conn.execute(STAGE_SQL)
        conn.execute(STAGE_DEVICES_SQL)
        conn.commit()

    def load_last(self, device_ids: Iterable[str]) -> dict[str, LastFix]:
        rows = self.conn.execute(
            "SELECT device_id, last_ts, lat, lon, accuracy FROM devices"
            " WHERE device_id = ANY(%s) AND last_ts IS NOT NULL",
            (list(device_ids),),
        ).fetchall()
        self.conn.commit()
        return {str(r[0]): LastFix(r[1], r[2], r[3], r[4]) for r in rows}  # type: ignore[arg-type]

    def write(
        self,
        fixes: list[Fix],
        live: list[Fix],
        rejections: list[Rejection],
        source: str = "mqtt",
        within: Callable[[], object] | None = None,
    ) -> WriteResult:
        """``within``: more writes of the caller, in the same transaction (tracking)."""
        inserted = 0
        with self.conn.transaction():
            if fixes:
                inserted = self._write_positions(fixes)
                self._write_devices(fixes, live)
            if rejections:
                self._write_dead_letters(rejections, source)
            if within is not None:
                within()
        self._months.update(month_start(f.ts) for f in fixes)
        return WriteResult(inserted=inserted, duplicates=len(fixes) - inserted)

    def _write_positions(self, fixes: list[Fix]) -> int:
        months = {month_start(f.ts) for f in fixes} - self._months
        if months:
            self.conn.execute(
                "SELECT shiptrack_ensure_positions_partitions(%s)", (sorted(months),)
            )
        copy_sql = f"COPY positions_in ({POSITION_COLUMNS}) FROM STDIN (FORMAT BINARY)"
        with self.conn.cursor() as cur:
            with cur.copy(copy_sql) as cp:
                cp.set_types(POSITION_TYPES)
                for f in fixes:
                    cp.write_row((
                        f.device_id, f.ts, f.lat, f.lon, f.speed, f.heading, f.accuracy,
                        f.alt, f.battery, f.seq,
                        None if f.sensors is None else Jsonb(f.sensors),
                        None if f.attrs is None else Jsonb(f.attrs),
                        f.outlier,
                    ))
            cur.execute(INSERT_SQL)
            return len(cur.fetchall())

    def _write_devices(self, fixes: list[Fix], live: list[Fix]) -> None:
        """Each device's newest live fix becomes its last position (never backwards, also
        against a concurrent ingest process); devices with only older fixes are touched."""
        newest: dict[str, Fix] = {}
        for f in live:
            newest[f.device_id] = f  # live is in ts order: the last one wins
        with self.conn.cursor() as cur:
            if newest:
                with cur.copy(f"COPY devices_in ({DEVICE_COLUMNS}) FROM STDIN (FORMAT BINARY)") \
                        as cp:
                    cp.set_types(DEVICE_TYPES)
                    for f in newest.values():
                        cp.write_row((
                            f.device_id, f.ts, f.lat, f.lon, f.speed, f.heading, f.accuracy,
                            f.alt, f.battery, None if f.sensors is None else Jsonb(f.sensors),
                            None if f.attrs is None else Jsonb(f.attrs),
                        ))
                cur.execute(UPSERT_DEVICES_SQL)
            others = sorted({f.device_id for f in fixes} - newest.keys())
            if others:
                cur.execute(TOUCH_DEVICES_SQL, (others,))

    def _write_dead_letters(self, rejections: list[Rejection], source: str) -> None:
        with self.conn.cursor() as cur, cur.copy(DEAD_LETTER_COPY) as cp:
            for r in rejections:
                cp.write_row((source, storable_text(r.topic), storable_text(r.reason),
                              storable_text(r.detail), r.payload, r.count))


def storable_text(value: str) -> str:
    """Text PostgreSQL accepts whatever the input held: NUL escaped, lone surrogates
    replaced (a dead letter is the one place bad input must always fit)."""
    text = value.replace("\x00", "\\x00")
    return text.encode("utf-8", "replace").decode("utf-8")
