"""Prometheus metrics of the ingest pipeline, and the small HTTP server that exposes
them with ``/healthz`` on ``SHIPTRACK_METRICS_PORT``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

RECEIVED = Counter("shiptrack_ingest_messages_received", "MQTT messages taken from the broker")
STORED = Counter("shiptrack_ingest_fixes_stored", "Fixes newly stored in positions")
DUPLICATES = Counter("shiptrack_ingest_fixes_duplicate", "Fixes already stored (same device, ts)")
OUTLIERS = Counter("shiptrack_ingest_fixes_outlier", "Fixes flagged as GPS outliers")
REJECTED = Counter("shiptrack_ingest_rejected", "Rejected inputs, by reason", ["reason"])
BATCH_SIZE = Histogram(
    "shiptrack_ingest_batch_messages", "Messages per committed batch",
    buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000, 20000),
)
COMMIT_SECONDS = Histogram(
    "shiptrack_ingest_commit_seconds", "Time to write and commit one batch",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
LAG_SECONDS = Histogram(
    "shiptrack_ingest_lag_seconds", "From receipt of a message to its commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STORE_ERRORS = Counter("shiptrack_ingest_store_errors", "Failed batch writes (retried)")
INBOX = Gauge("shiptrack_ingest_inbox_messages", "Messages received, not yet committed")


class _Handler(BaseHTTPRequestHandler):
    healthy: Callable[[], bool] = staticmethod(lambda: True)

    def do_GET(self) -> None:
        if self.path.startswith("/metrics"):
            body, ctype, status = generate_latest(), CONTENT_TYPE_LATEST, 200
        elif self.path.startswith("/healthz"):
            ok = type(self).healthy()
            body = b'{"status":"ok"}' if ok else b'{"status":"unhealthy"}'
            ctype, status = "application/json", 200 if ok else 503
        else:
            body, ctype, status = b'{"error":{"code":"not_found","message":"no such path"}}', (
                "application/json"), 404
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return


def serve_metrics(host: str, port: int, healthy: Callable[[], bool]) -> ThreadingHTTPServer:
    """Start the metrics server in a daemon thread; returns it (``shutdown()`` stops it)."""
    handler = type("Handler", (_Handler,), {"healthy": staticmethod(healthy)})
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
