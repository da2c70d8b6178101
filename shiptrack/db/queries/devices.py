"""Named SQL of devices for the API: devices with their last position, a device's track
(raw, or downsampled on the database), the fleet stream's snapshot."""

from __future__ import annotations

from shiptrack.db.queries.positions import DEVICE_COLUMNS, DEVICE_POINT, POINT_COLUMNS

# a device: its last position's columns (from shiptrack.fix.Fix) and when it was seen
SELECT = f"SELECT {DEVICE_COLUMNS}, first_seen_at, last_received_at FROM devices"
PAGE = SELECT + " WHERE device_id > %s ORDER BY device_id LIMIT %s"
BY_ID = SELECT + " WHERE device_id = %s"
EXISTS = "SELECT 1 FROM devices WHERE device_id = %s"

# the fleet stream's first message: every device's last position
SNAPSHOT = f"""
SELECT device_id, {DEVICE_POINT} FROM devices
WHERE last_ts IS NOT NULL ORDER BY device_id
"""

# A device's track: %(d)s the device, %(f)s..%(t)s the window, %(n)s at most this many.
TRACK_WHERE = "device_id = %(d)s AND ts >= %(f)s AND ts <= %(t)s AND NOT outlier"
TRACK_RAW = f"""
SELECT {POINT_COLUMNS} FROM positions WHERE {TRACK_WHERE} ORDER BY ts LIMIT %(n)s
"""
TRACK_SPAN = f"SELECT min(ts), max(ts) FROM positions WHERE {TRACK_WHERE}"
# The last fix of each of at most max_points equal time buckets (%(w)s wide, from
# %(f)s); time_bucket (TimescaleDB) and date_bin (PostgreSQL) cut the same buckets from
# the same origin.
_TRACK_BUCKETED = """
SELECT DISTINCT ON (bucket) {columns} FROM (
    SELECT {bucket} AS bucket, {columns} FROM positions WHERE {where}
) p ORDER BY bucket, ts DESC
"""
_BUCKET = {"timescale": "time_bucket(%(w)s, ts, origin => %(f)s)",
           "plain": "date_bin(%(w)s, ts, %(f)s)"}


def track_bucketed(storage_mode: str) -> str:
    """The downsampled track of a storage mode (``timescale`` or ``plain``)."""
    return _TRACK_BUCKETED.format(bucket=_BUCKET[storage_mode], where=TRACK_WHERE,
                                  columns=POINT_COLUMNS)
