"""The FastAPI application: REST, streams, health, metrics and the web pages."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import AsyncConnectionPool

from api import (
    errors,
    input_guard,
    log_redact,
    routes_carriers,
    routes_credentials,
    routes_devices,
    routes_events,
    routes_exceptions,
    routes_geofences,
    routes_notify_pages,
    routes_owntracks,
    routes_scans,
    routes_shipments,
    routes_subscriptions,
    routes_tokens,
    routes_track,
    routes_webhooks,
    security,
    web,
    ws_fleet,
    ws_tickets,
    ws_track,
)
from api.auth import digest
from api.auth_limit import FailureLimiter
from api.carrier_poller import CarrierPoller
from api.hub import Hub
from api.live_feed import LiveFeed
from api.mqtt_publisher import MqttPublisher
from api.notify_worker import NotificationWorker
from api.schemas import Health
from api.shutdown import close_streams_on_signal
from api.webhooks import WebhookWorker
from shiptrack import __version__
from shiptrack.carriers import polling
from shiptrack.config import Settings
from shiptrack.db.migrate import migrate
from shiptrack.db.queries import meta as meta_sql
from shiptrack.errors import ConfigError
from shiptrack.mqtturl import parse_mqtt_url
from shiptrack.tracking_tokens import key_from

log = logging.getLogger("shiptrack.api")
STATIC = resources.files("dashboards") / "static"


def create_app(settings: Settings, admin_token: str) -> FastAPI:
    if not settings.database_url or not settings.mqtt_url:
        raise ConfigError("the API needs SHIPTRACK_DATABASE_URL and SHIPTRACK_MQTT_URL")
    database_url, mqtt_url = settings.database_url, settings.mqtt_url
    try:
        carrier_accounts = polling.accounts(settings.carrier_accounts)
    except ValueError as exc:
        raise ConfigError(f"SHIPTRACK_CARRIER_ACCOUNTS: {exc}") from exc

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            database_url, min_size=1, max_size=10, open=False,
            kwargs={"autocommit": True},
        )
        await pool.open(wait=False)
        feed = LiveFeed(parse_mqtt_url(mqtt_url), app.state.hub, settings.mqtt_topic_prefix)
        feed.start()
        publisher = MqttPublisher(parse_mqtt_url(mqtt_url))
        publisher.start()
        app.state.pool, app.state.feed, app.state.publisher = pool, feed, publisher
        schema = asyncio.create_task(ensure_schema(app, database_url), name="migrate")
        hub: Hub = app.state.hub
        worker = WebhookWorker(pool, settings)
        notifier = NotificationWorker(pool, settings, tracking_key=app.state.tracking_key)
        app.state.notifier = notifier

        def on_event() -> None:
            worker.poke()
            notifier.poke()

        hub.on_event = on_event
        tasks = [schema, asyncio.create_task(hub.watchdog(), name="hub-watchdog"),
                 asyncio.create_task(worker.run(), name="webhook-worker"),
                 asyncio.create_task(notifier.run(), name="notification-worker")]
        if carrier_accounts:
            poller = CarrierPoller(pool, settings, carrier_accounts, app)
            tasks.append(asyncio.create_task(poller.run(), name="carrier-poller"))
        restore_signals = close_streams_on_signal(hub)
        try:
            yield
        finally:
            restore_signals()
            await hub.close_all(wait=1.0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await publisher.stop()
            await feed.stop()
            await pool.close()

    app = FastAPI(
        title="shiptrack", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs: served offline by api/web.py
        description="Real-time shipment telemetry: devices, geofences, shipments, events "
        "and live streams. Errors are `{\"error\": {\"code\", \"message\"}}`.",
    )
    app.state.settings = settings
    app.state.admin_token = admin_token
    app.state.admin_digest = digest(admin_token)
    app.state.hub = Hub(settings.ws_queue_limit, settings.ws_stall_seconds)
    app.state.auth_limiter = FailureLimiter(settings.auth_fail_limit,
                                            settings.auth_fail_window_s)
    log_redact.install()
    app.state.tracking_key = key_from(settings.tracking_key or admin_token)
    app.state.schema = "migrating"
    errors.install(app)
    input_guard.install(app, settings.max_body_bytes)  # inside the security headers
    security.install(app, settings.cors_origins, web.image_origins(settings))
    app.include_router(routes_devices.router)
    app.include_router(routes_tokens.router)
    app.include_router(routes_webhooks.router)
    app.include_router(routes_owntracks.router)
    app.include_router(routes_track.router)
    app.include_router(routes_geofences.router)
    app.include_router(routes_shipments.router)
    app.include_router(routes_events.router)
    app.include_router(routes_scans.router)
    app.include_router(routes_exceptions.router)
    app.include_router(routes_carriers.router)
    app.include_router(routes_subscriptions.router)
    app.include_router(routes_notify_pages.router)
    app.include_router(ws_fleet.router)
    app.include_router(ws_track.router)
    app.include_router(routes_credentials.router)
    app.include_router(ws_tickets.router)
    _health_routes(app)
    web.install(app, settings)  # before _pages: its mounts sit under /static
    _pages(app)
    return app


async def ensure_schema(app: FastAPI, database_url: str) -> None:
    """Apply pending migrations (under the migrator's lock) before ``/readyz`` says ready;
    retried while the database is unreachable."""
    delay = 1.0
    while True:
        try:
            applied = await asyncio.to_thread(migrate, database_url)
        except Exception as exc:  # unreachable (StorageError) or a migration that failed
            app.state.schema = f"not migrated: {str(exc).splitlines()[0] if str(exc) else exc!r}"
            log.warning("%s; retrying in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            continue
        if applied:
            log.info("applied %d migration(s): %s", len(applied), ", ".join(applied))
        app.state.schema = "ok"
        return


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz", response_model=Health, tags=["health"], summary="Process alive")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get("/readyz", response_model=Health, tags=["health"],
             summary="Schema current, database and broker reachable",
             responses={503: {"model": Health}})
    async def readyz(request: Request) -> Any:
        checks = {"database": "ok", "broker": "ok", "schema": request.app.state.schema}
        try:
            async with request.app.state.pool.connection(timeout=2) as conn:
                await conn.execute(meta_sql.PING)
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        if not request.app.state.feed.connected:
            checks["broker"] = "unreachable"
        ok = all(v == "ok" for v in checks.values())
        body = Health(status="ok" if ok else "unavailable", checks=checks)
        return body if ok else JSONResponse(body.model_dump(), status_code=503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics",
             response_class=Response)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _pages(app: FastAPI) -> None:
    static_dir = str(STATIC)
    app.mount("/static", StaticFiles(directory=static_dir), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(f"{static_dir}/index.html")

    @app.get("/t/{tracking_token}", include_in_schema=False)
    async def tracking_page(tracking_token: str) -> FileResponse:
        return FileResponse(f"{static_dir}/track.html")
