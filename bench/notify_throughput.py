"""Notifications per second from the outbox to a local SMTP server.

Run from the repository root (needs PostgreSQL):

    SHIPTRACK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.notify_throughput --mails 2000

In a fresh database (all migrations), ``--mails`` subscriptions (10 per shipment) and one
``shipment.milestone`` event per shipment; then, timed separately:

1. fan-out: the worker turns the events into outbox rows (rows per second);
2. delivery: the worker claims, renders (Jinja2 + Babel, en/de/fr/es in turn), sends
   over SMTP to an aiosmtpd server in a process of its own (``aiosmtpd.handlers.Sink``)
   and records each row (mails per second);
3. the floor to compare with: the same number of pre-built messages sent by a bare
   aiosmtplib loop over one connection to the same server (mails per second).

Prints one JSON object with the three rates and the ratio delivery / bare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from email.message import Message
from typing import Any

import aiosmtplib
import psycopg
from psycopg_pool import AsyncConnectionPool

from api.notify_worker import NotificationWorker
from bench.scratch import admin_url, create_scratch, drop_scratch
from shiptrack.config import Settings
from shiptrack.embedded import free_port
from shiptrack.notify.mail import build_message
from shiptrack.notify.render import render_email

LANGS = ("en", "de", "fr", "es")
PER_SHIPMENT = 10


def wait_listening(port: int) -> None:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the SMTP sink did not start")


def populate(url: str, mails: int) -> None:
    ships = max(1, mails // PER_SHIPMENT)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO shipments (id, reference, device_id, tracking_token, origin,"
            " destination) SELECT 'shp_' || i, 'B-' || i, 'dev', 'tok' || i, '{}', '{}'"
            " FROM generate_series(1, %s) i", (ships,))
        conn.execute(
            "INSERT INTO subscriptions (id, shipment_id, channel, address, language,"
            " timezone, notify, unsubscribe_token)"
            " SELECT 'sub_' || i, 'shp_' || (1 + (i - 1) / %s), 'email',"
            " 'r' || i || '@example.com', (%s::text[])[1 + i %% 4], 'Europe/Berlin',"
            " '{delivered}', 'u' || i FROM generate_series(1, %s) i",
            (PER_SHIPMENT, list(LANGS), ships * PER_SHIPMENT))
        conn.execute("INSERT INTO notification_cursor (id, last_seq) VALUES (true, 0)")
        conn.execute(
            "INSERT INTO events (id, ts, type, device_id, shipment_id, data)"
            " SELECT 'evt_' || i, now(), 'shipment.milestone', 'dev', 'shp_' || i,"
            " '{\"kind\": \"delivered\"}' FROM generate_series(1, %s) i", (ships,))


async def through_worker(settings: Settings) -> tuple[float, float, int]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.database_url or "", min_size=1, max_size=4, open=False,
        kwargs={"autocommit": True})
    await pool.open(wait=True)
    worker = NotificationWorker(pool, settings)
    try:
        start = time.perf_counter()
        while await worker.fan_out():
            pass
        fanned = time.perf_counter() - start
        start = time.perf_counter()
        sent = 0
        while (n := await worker.deliver_due()):
            sent += n
        delivered = time.perf_counter() - start
    finally:
        await worker.close()
        await pool.close()
    return fanned, delivered, sent


async def bare(url: str, messages: list[Message]) -> float:
    host, port = url.removeprefix("smtp://").split(":")
    client = aiosmtplib.SMTP(hostname=host, port=int(port))
    await client.connect()
    start = time.perf_counter()
    for msg in messages:
        await client.send_message(msg)
    took = time.perf_counter() - start
    await client.quit()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mails", type=int, default=2000)
    args = parser.parse_args()
    admin = admin_url()
    url = create_scratch(admin)
    try:
        populate(url, args.mails)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l",
                                   f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"])
        try:
            smtp = f"smtp://127.0.0.1:{port}"
            wait_listening(port)
            settings = Settings(database_url=url, smtp_url=smtp,
                                public_url="https://track.example")
            fanned, delivered, sent = asyncio.run(through_worker(settings))
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM notification_outbox"
                                   " WHERE sent_at IS NOT NULL").fetchone()
            assert row is not None and row[0] == sent == args.mails, (row, sent)
            ctx = {"kind": "delivered", "reference": "B-1", "ts": "2026-12-01T10:00:00Z"}
            links = {"tracking_url": "https://t/t/x", "unsubscribe_url": "https://t/n/u"}
            messages = [build_message(
                render_email("update", ctx, LANGS[i % 4], "Europe/Berlin", links),
                sender=settings.mail_from, to=f"r{i}@example.com", language=LANGS[i % 4],
                key=str(i), unsubscribe_url=links["unsubscribe_url"]) for i in range(sent)]
            floor = asyncio.run(bare(smtp, messages))
        finally:
            server.terminate()
            server.wait(10)
    finally:
        drop_scratch(admin, url)
    print(json.dumps({
        "mails": sent, "fan_out_rows_per_s": round(sent / fanned),
        "worker_mails_per_s": round(sent / delivered), "bare_smtp_mails_per_s": round(sent / floor),
        "worker_over_bare": round(floor / delivered, 2)}))


if __name__ == "__main__":
    main()
