"""Keyset paging in SQL: the rows after a key, in its order."""

from __future__ import annotations


def after_id(select: str) -> str:
    """A page of ``select`` (``SELECT ... FROM t WHERE <condition>``) in ``id`` order:
    its rows with an ``id`` after ``%s``, at most ``%s``."""
    return f"{select} AND id > %s ORDER BY id LIMIT %s"
