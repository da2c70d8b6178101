"""The plain variant's month partitions, created on demand by
``shiptrack_ensure_positions_partitions`` (migration 0002, made race-free in 0018)."""

from __future__ import annotations

import threading

import psycopg

from tests.helpers import query, wait_for

ENSURE = "SELECT shiptrack_ensure_positions_partitions(ARRAY['2099-01-15']::timestamptz[])"


def test_two_writers_at_a_new_month_both_go_on(db_url: str) -> None:
    # The second writer looks the partition up before the first commits, waits on the
    # helper's lock, and must then see the first one's partition rather than create it
    # again (the DuplicateTable a CI run met on the first fixes of December).
    first = psycopg.connect(db_url)
    second = psycopg.connect(db_url)
    errors: list[BaseException] = []
    try:
        first.execute(ENSURE)  # holds the helper's lock until it commits
        pid = second.info.backend_pid

        def run_second() -> None:
            try:
                second.execute(ENSURE)
                second.commit()
            except psycopg.Error as exc:  # reported to the test below
                errors.append(exc)
                second.rollback()

        thread = threading.Thread(target=run_second)
        thread.start()
        wait_for(lambda: query(db_url, "SELECT 1 FROM pg_stat_activity WHERE pid = %s"
                                       " AND wait_event_type = 'Lock'", (pid,)))
        first.commit()
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        first.close()
        second.close()
    assert errors == []
    assert query(db_url, "SELECT pg_get_expr(relpartbound, oid) FROM pg_class"
                         " WHERE relname = 'positions_209901'") == [
        ("FOR VALUES FROM ('2099-01-01 00:00:00+00') TO ('2099-02-01 00:00:00+00')",)]
