"""Named SQL of ``positions``, ``devices`` (a device's last position) and ``dead_letters``:
what ingest writes for every batch. The column lists and COPY types are derived from
``shiptrack.fix.Fix`` (the one definition of a position's fields).

- Positions are COPYed (binary) into a temporary table, then inserted in one statement;
  a duplicate (same device and ts) is dropped by the primary key.
- A device's last position moves only forward (``last_ts``), also against a concurrent
  ingest process; a device whose fixes of the batch are all older is only touched.
"""

from __future__ import annotations

from shiptrack.fix import LAST_POSITION_FIELDS, POINT_FIELDS, POSITION_FIELDS, sql_type

POSITION_COLUMNS = ", ".join(POSITION_FIELDS)
POSITION_TYPES = [sql_type(n) for n in POSITION_FIELDS]
# a device's last position: the same fields, ``ts`` kept as ``last_ts``
DEVICE_FIELDS = tuple("last_ts" if n == "ts" else n for n in LAST_POSITION_FIELDS)
# a field of the last position -> its column in ``devices``
DEVICE_COLUMN = dict(zip(LAST_POSITION_FIELDS, DEVICE_FIELDS, strict=True))
# a point (``shiptrack.fix.POINT_FIELDS``): its columns in ``positions``, in ``devices``
POINT_COLUMNS = ", ".join(POINT_FIELDS)
DEVICE_POINT_COLUMNS = ", ".join(DEVICE_COLUMN[n] for n in POINT_FIELDS)
# a device's point under the fields' names (``last_ts AS ts, ...``)
DEVICE_POINT = ", ".join(n if DEVICE_COLUMN[n] == n else f"{DEVICE_COLUMN[n]} AS {n}"
                         for n in POINT_FIELDS)
DEVICE_COLUMNS = ", ".join(DEVICE_FIELDS)
DEVICE_TYPES = [sql_type(n) for n in LAST_POSITION_FIELDS]

STAGE_POSITIONS = """
CREATE TEMP TABLE IF NOT EXISTS positions_in
    (LIKE positions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
COPY_POSITIONS = f"COPY positions_in ({POSITION_COLUMNS}) FROM STDIN (FORMAT BINARY)"
INSERT_POSITIONS = f"""
INSERT INTO positions ({POSITION_COLUMNS})
SELECT DISTINCT ON (device_id, ts) {POSITION_COLUMNS} FROM positions_in
ORDER BY device_id, ts
ON CONFLICT (device_id, ts) DO NOTHING
RETURNING device_id, ts
"""
ENSURE_PARTITIONS = "SELECT shiptrack_ensure_positions_partitions(%s)"

STAGE_DEVICES = """
CREATE TEMP TABLE IF NOT EXISTS devices_in
    (LIKE devices INCLUDING DEFAULTS) ON COMMIT DELETE ROWS
"""
COPY_DEVICES = f"COPY devices_in ({DEVICE_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in DEVICE_FIELDS if c != "device_id")
UPSERT_DEVICES = f"""
INSERT INTO devices AS d ({DEVICE_COLUMNS}, last_received_at)
SELECT {DEVICE_COLUMNS}, now() FROM devices_in ORDER BY device_id
ON CONFLICT (device_id) DO UPDATE SET
    {_UPDATES}, last_received_at = excluded.last_received_at
WHERE d.last_ts IS NULL OR d.last_ts < excluded.last_ts
"""
TOUCH_DEVICES = """
INSERT INTO devices (device_id, last_received_at)
SELECT id, now() FROM unnest(%s::text[]) AS t(id) ORDER BY id
ON CONFLICT (device_id) DO UPDATE SET last_received_at = now()
"""
# the outlier filter's seed: each device's stored last position
LOAD_LAST = """
SELECT device_id, last_ts, lat, lon, accuracy FROM devices
WHERE device_id = ANY(%s) AND last_ts IS NOT NULL
"""

COPY_DEAD_LETTERS = "COPY dead_letters (source, topic, reason, detail, payload, count) FROM STDIN"
# one dead letter (the API's doors)
DEAD_LETTER = """
INSERT INTO dead_letters (source, topic, reason, detail, payload) VALUES (%s, %s, %s, %s, %s)
"""
