"""Creating the demo's geofences and shipments through the API (SPEC: HTTP API).

For every trip the fleet plans (a ``trip_planned`` truth record) the provisioner makes
sure both hubs have a circular geofence (``hub <name>``, once per hub) and creates a
shipment from the origin's fence to the destination's, on the truck's device, with the
planned route, a promised time and sensor limits (shock; the reefer's temperature band).
Bearer token auth; stdlib HTTP only.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shiptrack.errors import ShiptrackError
from simulator.cities import CITIES
from simulator.truth import Record

log = logging.getLogger("shiptrack.simulator")

HUB_RADIUS_M = 2_000.0
SHOCK_LIMIT_G = 2.0  # knocks are 2.5-8 g, road vibration stays below 0.5 g
PROMISE_SLACK = 1.3  # promised: planned departure + 1.3 x (distance at 70 km/h) + 1 h


class ProvisionError(ShiptrackError):
    """The API refused or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Api:
    def __init__(self, base_url: str, token: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json", "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            raise ProvisionError(f"{method} {path}: HTTP {exc.code} {detail}", exc.code) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ProvisionError(f"{method} {path}: cannot reach {self.base_url}: {exc}") from exc
        return json.loads(raw) if raw else None


def hub_fence(name: str, lat: float, lon: float, radius_m: float) -> dict[str, Any]:
    return {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"name": f"hub {name}", "radius_m": radius_m, "kind": "hub"}}


@dataclass
class Provisioner:
    api: Api
    reference_prefix: str
    device_id_of: dict[str, str] = field(default_factory=dict)  # fleet id -> ingest id
    radius_m: float = HUB_RADIUS_M
    fences: dict[str, str] = field(default_factory=dict)  # hub name -> geofence id
    shipments: dict[str, dict[str, Any]] = field(default_factory=dict)  # trip id -> answer
    _hubs: dict[str, tuple[float, float]] = field(
        default_factory=lambda: {h.name: h.point for h in CITIES})

    def fence(self, hub: str) -> str:
        if hub not in self.fences:
            lat, lon = self._hubs[hub]
            answer = self.api.request("POST", "/api/v1/geofences",
                                      hub_fence(hub, lat, lon, self.radius_m))
            self.fences[hub] = str(answer["id"])
        return self.fences[hub]

    def handle(self, records: list[Record]) -> None:
        for record in records:
            if record["type"] == "trip_planned":
                self.shipment(record)

    def shipment(self, planned: Record) -> dict[str, Any]:
        departure = datetime.fromisoformat(planned["planned_departure"])
        hours = planned["distance_m"] / 1000 / 70.0 * PROMISE_SLACK + 1.0
        device = planned["device_id"]
        body = {
            "reference": f"{self.reference_prefix}{planned['trip_id']}",
            "device_id": self.device_id_of.get(device, device),
            "origin": {"geofence_id": self.fence(planned["origin"])},
            "destination": {"geofence_id": self.fence(planned["destination"])},
            "promised_by": (departure + timedelta(hours=hours)).isoformat().replace("+00:00", "Z"),
            "route": planned["route"],
            "sensor_limits": {"shock_g": {"max": SHOCK_LIMIT_G}},
        }
        if planned.get("ts"):  # when it was planned, on the (maybe sped-up) simulated clock
            planned_at = datetime.fromisoformat(planned["ts"])
            body["created_at"] = min(planned_at, datetime.now(UTC)).isoformat().replace(
                "+00:00", "Z")
        band = planned.get("temperature_band")
        if band:
            body["sensor_limits"]["temperature_c"] = {"min": band[0], "max": band[1]}
        try:
            answer = self.api.request("POST", "/api/v1/shipments", body)
        except ProvisionError as exc:
            if exc.status != 422:
                raise
            log.warning("shipment by geofence refused (%s); retrying with points", exc)
            for end in ("origin", "destination"):
                lat, lon = self._hubs[planned[end]]
                body[end] = {"lat": lat, "lon": lon, "radius_m": self.radius_m}
            answer = self.api.request("POST", "/api/v1/shipments", body)
        self.shipments[planned["trip_id"]] = answer
        log.info("shipment %s: %s -> %s on %s", body["reference"], planned["origin"],
                 planned["destination"], body["device_id"])
        return dict(answer)
