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
UPSERT_DEVICE_SQL = """
INSERT INTO devices AS d (device_id, last_ts, lat, lon, speed, heading, accuracy, alt,
                          battery, sensors, attrs, last_received_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (device_id) DO UPDATE SET
    last_ts = excluded.last_ts, lat = excluded.lat, lon = excluded.lon,
    speed = excluded.speed, heading = excluded.heading, accuracy = excluded.accuracy,
    alt = excluded.alt, battery = excluded.battery, sensors = excluded.sensors,
    attrs = excluded.attrs, last_received_at = excluded.last_received_at
WHERE d.last_ts IS NULL OR d.last_ts < excluded.last_ts
"""
TOUCH_DEVICE_SQL = """
INSERT INTO devices (device_id, last_received_at) VALUES (%s, now())
ON CONFLICT (device_id) DO UPDATE SET last_received_at = now()
"""
DEAD_LETTER_COPY = "COPY dead_letters (source, topic, reason, detail, payload) FROM STDIN"


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
        conn.commit()

    def load_last(self, device_ids: Iterable[str]) -> dict[str, LastFix]:
        rows = self.conn.execute(
            "SELECT device_id, last_ts, lat, lon FROM devices"
            " WHERE device_id = ANY(%s) AND last_ts IS NOT NULL",
            (list(device_ids),),
        ).fetchall()
        self.conn.commit()
        return {str(r[0]): LastFix(r[1], r[2], r[3]) for r in rows}  # type: ignore[arg-type]

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
        newest: dict[str, Fix] = {}
        for f in live:
            newest[f.device_id] = f  # live is in ts order: the last one wins
        rows = [
            (f.device_id, f.ts, f.lat, f.lon, f.speed, f.heading, f.accuracy, f.alt,
             f.battery, None if f.sensors is None else Jsonb(f.sensors),
             None if f.attrs is None else Jsonb(f.attrs))
            for f in sorted(newest.values(), key=lambda f: f.device_id)
        ]
        with self.conn.cursor() as cur:
            if rows:
                cur.executemany(UPSERT_DEVICE_SQL, rows)
            others = sorted({f.device_id for f in fixes} - newest.keys())
            if others:
                cur.executemany(TOUCH_DEVICE_SQL, [(d,) for d in others])

    def _write_dead_letters(self, rejections: list[Rejection], source: str) -> None:
        with self.conn.cursor() as cur, cur.copy(DEAD_LETTER_COPY) as cp:
            for r in rejections:
                cp.write_row((source, r.topic, r.reason, r.detail, r.payload))
