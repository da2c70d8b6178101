"""Opaque keyset cursors: base64url of a JSON list of the last row's sort key."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec
from psycopg.rows import dict_row

from api.errors import ApiError
from shiptrack.db.queries.paging import after_id


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = msgspec.json.decode(raw)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise ApiError(400, "cursor is not one this API returned", "bad_cursor") from exc
    if not isinstance(key, list) or len(key) != size:
        raise ApiError(400, "cursor is not one this API returned", "bad_cursor")
    return key


Row = dict[str, Any]


def page(rows: list[Row], limit: int, key: str) -> tuple[list[Row], str | None]:
    """Rows fetched with ``LIMIT limit + 1``: this page, and the cursor of the next one
    (None on the last page), keyed on the column ``key``."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor([rows[-1][key]])


async def id_page(
    pool: Any, select: str, cursor: str | None, limit: int
) -> tuple[list[Row], str | None]:
    """One page of ``select`` (``SELECT ... FROM t WHERE <condition>``) in ``id`` order,
    after the row the cursor names."""
    after = str(decode_cursor(cursor, 1)[0]) if cursor else ""
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(after_id(select), (after, limit + 1))
        rows: list[Row] = await cur.fetchall()
    return page(rows, limit, "id")
