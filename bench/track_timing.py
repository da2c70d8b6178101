"""Public tracking: an unknown token is answered as late as a known one
(``TIMING_FLOOR_S`` in api/routes_track.py). Measured here, not asserted in the tests.

    SHIPTRACK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    SHIPTRACK_MQTT_URL=mqtt://127.0.0.1:1883 python -m bench.track_timing [--requests 50]

A temporary database (migrated, one shipment) and the API in this process (uvicorn in a
thread, loopback); after a warm-up, ``--requests`` pairs of ``GET /api/v1/track/{token}``,
the known token and a fresh random one in turn. Reported: the median and slowest seconds
of each, the floor, and the ratio of the medians (unknown / known; 1.00 is the aim).
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import threading
import time

import httpx
import psycopg

from bench.scratch import create_scratch, drop_scratch


def timed(http: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    http.get(url)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    import uvicorn

    from api.app import create_app
    from api.routes_track import TIMING_FLOOR_S
    from shiptrack.config import Settings

    base_settings = Settings()
    admin = base_settings.database_url or ""
    url = create_scratch(admin)
    try:
        token = secrets.token_urlsafe(24)
        place = json.dumps({"lat": 52.5, "lon": 13.4, "radius_m": 200})
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO shipments (id, reference, device_id, tracking_token,"
                         " origin, destination) VALUES ('shp_b', 'B', 'truck-b', %s, %s, %s)",
                         (token, place, place))
        settings = base_settings.model_copy(update={"database_url": url})
        app = create_app(settings, "bench-admin-token-of-24-chars")
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
                for _ in range(5):  # warm-up
                    timed(http, f"/api/v1/track/{token}")
                    timed(http, "/api/v1/track/unknown-token")
                known, unknown = [], []
                for _ in range(args.requests):
                    known.append(timed(http, f"/api/v1/track/{token}"))
                    unknown.append(timed(http, f"/api/v1/track/{secrets.token_urlsafe(24)}"))
        finally:
            server.should_exit = True
            thread.join(10)
    finally:
        drop_scratch(admin, url)
    k, u = statistics.median(known), statistics.median(unknown)
    print(f"floor {TIMING_FLOOR_S:.3f} s, {args.requests} requests each")
    print(f"known token:   median {k:.4f} s, slowest {max(known):.4f} s")
    print(f"unknown token: median {u:.4f} s, slowest {max(unknown):.4f} s")
    print(f"unknown / known (medians): {u / k:.2f}")


if __name__ == "__main__":
    main()
