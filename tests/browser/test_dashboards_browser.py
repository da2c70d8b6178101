"""The web pages in Debian's Chromium (Playwright for Python), against a running stack:
ingest and the API on the real PostgreSQL and broker, fixes published over MQTT. Every
request to another host is aborted, so the pages are tested as they work offline: the
built-in base layer under the markers, /docs from the project's own assets.

Screenshots go to tests/browser/artifacts/ (git-ignored); the fleet-layer figures for
10,000 devices to artifacts/fleet-fps.json (measured, not asserted: no wall-clock
thresholds in tests).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shiptrack.config import Settings
from shiptrack.events import make_event
from tests.helpers import cloned_database, publish, query, running_api, running_ingest

pw = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"
TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOCAL = re.compile(r"^(https?|wss?)://127\.0\.0\.1[:/]")

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail("CI needs Debian's chromium (.ci/run installs it)", pytrace=False)
    pytest.skip("no /usr/bin/chromium", allow_module_level=True)


class Stack:
    def __init__(self, base: str, settings: Settings) -> None:
        self.base, self.settings = base, settings
        self.http = httpx.Client(base_url=base, headers=AUTH, timeout=10)
        self.prefix = settings.mqtt_topic_prefix

    def fix(self, device: str, lat: float, lon: float, ts: datetime, **extra: Any) -> None:
        body = {"ts": ts.isoformat(), "lat": lat, "lon": lon, **extra}
        publish(self.settings.mqtt_url or "",
                [(f"{self.prefix}shiptrack/v1/devices/{device}/position",
                  json.dumps(body).encode())])


@pytest.fixture(scope="module")
def stack(admin_db_url: str, template_db: str, mqtt_url: str) -> Iterator[Stack]:
    prefix = f"test-{uuid.uuid4().hex[:12]}/"
    with cloned_database(admin_db_url, template_db, "shiptrack_b") as db:
        settings = Settings(
            database_url=db, mqtt_url=mqtt_url,
            mqtt_topic_prefix=prefix, mqtt_client_id=f"ingest-{prefix.strip('/')}",
            metrics_port=0, admin_token=TOKEN, ingest_batch_ms=20, brand_name="Acme Parcels",
            # tiles from a port where nothing listens: refused at once, as offline
            map_tiles_url="http://127.0.0.1:9/{z}/{x}/{y}.png",
            brand_contact_email="help@acme.example",
        )
        with running_ingest(settings), running_api(settings) as base:
            s = Stack(base, settings)
            yield s
            s.http.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    with pw.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def offline_page(browser: Any, **context: Any) -> Any:
    """A page whose requests to any host but ours are aborted. (The tiles come from a
    closed local port, so they fail without a round trip through this handler.)"""
    ctx = browser.new_context(**context)
    ctx.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    page = ctx.new_page()
    page.set_default_timeout(15000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.errors = errors  # type: ignore[attr-defined]
    return page


def base_layer_pixels(page: Any) -> int:
    """Painted pixels of the base layer's canvas (coastlines, land)."""
    return int(page.evaluate("""() => {
        const c = document.querySelector('.leaflet-base-pane canvas');
        if (!c) return 0;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4 * 16) if (d[i] > 0) n += 1;
        return n;
    }"""))


def test_fleet_markers_move_over_the_base_layer_with_tiles_blocked(
        stack: Stack, browser: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    for i, (lat, lon) in enumerate([(52.52, 13.40), (48.14, 11.58), (50.11, 8.68)]):
        stack.fix(f"truck-{i}", lat, lon, now - timedelta(hours=3), speed=20.0, heading=90.0)
    page = offline_page(browser)
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_function("() => window.shiptrack && window.shiptrack.fleet.devices.size >= 3")
    page.wait_for_selector("#map[data-base-layer='ready']")
    page.wait_for_function("() => window.shiptrack.fleetLayer.inView >= 3")
    assert base_layer_pixels(page) > 1000
    # three hours old but just received: moving (green), not stale (grey)
    states = page.evaluate("""async () => {
        const m = await import('/static/js/state.js');
        return [...window.shiptrack.fleet.devices.values()].map(
            (d) => m.deviceState(d, Date.now()));
    }""")
    assert states == ["moving", "moving", "moving"]
    assert page.locator("#device-list .dev-seen").first.inner_text() == "just now"
    before = page.evaluate("() => window.shiptrack.fleet.devices.get('truck-0').pos.lon")
    # (a plausible step: ingest keeps an implausible jump off the live position)
    stack.fix("truck-0", 52.52, 13.41, now - timedelta(hours=3) + timedelta(minutes=1),
              speed=20.0, heading=90.0)
    page.wait_for_function("() => window.shiptrack.fleet.devices.get('truck-0').pos.lon > 13.405")
    assert before == pytest.approx(13.40)
    # select and follow: the map keeps the truck in view as it drives on
    page.locator("#device-list button", has_text="truck-0").click()
    page.check("#follow")
    page.evaluate("""async () => {
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        window.shiptrack.map.setView([40, 0], 9, {animate: false});
    }""")
    page.check("#follow")
    stack.fix("truck-0", 52.52, 13.42, now - timedelta(hours=3) + timedelta(minutes=2),
              speed=20.0, heading=90.0)
    page.wait_for_function("""() => window.shiptrack.map.getBounds().contains(
        [52.52, window.shiptrack.fleet.devices.get('truck-0').pos.lon]) &&
        window.shiptrack.fleet.devices.get('truck-0').pos.lon > 13.415""")
    page.screenshot(path=str(ARTIFACTS / "dispatch-offline.png"))
    assert page.errors == []  # type: ignore[attr-defined]


# 10,000 devices, measured in the page (figures printed and kept, never asserted): at the
# two views a dispatcher uses (the whole fleet zoomed out, a region zoomed in), the median
# time of one full redraw of the fleet layer, and the frames/s while positions keep
# arriving (300 devices move every frame, so the layer redraws every frame). Also, for the
# whole fleet: a drag (the map pane moves; no redraw until it ends), and panBy each frame
# (a move that ends every frame: the base layer's canvas redraws too). The same script
# runs on a second page whose /static/js/fleetlayer.js is the layer as it was before
# clustering (fleetlayer_before.js), so before and after come from one run.
FLEET_JS = """async () => {
    const m = await import('/static/js/state.js');
    const ctx = window.shiptrack;
    const now = Date.now();
    for (let i = 0; i < 10000; i += 1) {
        m.applyFix(ctx.fleet, `sim-${i}`, {ts: now, lat: 47 + (i % 100) * 0.06,
            lon: 6 + Math.floor(i / 100) * 0.09, speed: i % 3 ? 15 : 0, heading: i % 360}, now);
    }
}"""

MEASURE_JS = (Path(__file__).parent / "fleet_measure.js").read_text()

VIEWS = {"fleet": (50.0, 10.5, 6), "region": (50.2, 9.0, 10)}


def fleet_page(stack: Stack, browser: Any, before: bool = False) -> Any:
    page = offline_page(browser, viewport={"width": 1400, "height": 900})
    if before:
        old = (Path(__file__).parent / "fleetlayer_before.js").read_text()
        page.context.route(f"{stack.base}/static/js/fleetlayer.js", lambda route: route.fulfill(
            body=old, content_type="text/javascript"))
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_function("() => window.shiptrack && window.shiptrack.booted")
    page.evaluate(FLEET_JS)
    return page


def test_ten_thousand_devices_on_the_canvas(stack: Stack, browser: Any) -> None:
    before = fleet_page(stack, browser, before=True)
    old = {name: before.evaluate(MEASURE_JS, [*view, False, False]) for name, view in VIEWS.items()}
    before.context.close()
    page = fleet_page(stack, browser)
    unclustered = page.evaluate(MEASURE_JS, [*VIEWS["fleet"], False, False])
    new = {name: page.evaluate(MEASURE_JS, [*view, True, name == "fleet"])
           for name, view in VIEWS.items()}
    page.screenshot(path=str(ARTIFACTS / "dispatch-10k.png"))
    ratios = {name: {
        "draw_ms_before_over_after": old[name]["draw_ms"] / max(new[name]["draw_ms"], 0.1),
        "live_fps_after_over_before": new[name]["live_fps"] / old[name]["live_fps"],
    } for name in VIEWS}
    figures = {"before": old, "after": new, "after_fleet_unclustered": unclustered,
               "ratios": ratios}
    (ARTIFACTS / "fleet-fps.json").write_text(json.dumps(figures, indent=2))
    print("fleet canvas, 10,000 devices:", json.dumps(figures, indent=1))
    fleet, region = new["fleet"], new["region"]
    # zoomed out: every device is in view, each drawn once, in a bubble or on its own
    # (the earlier tests' trucks are on this stack too)
    assert fleet["leaflet_in_view"] == fleet["layer_in_view"] >= 10000
    assert fleet["clusters"] > 0
    assert fleet["clustered_devices"] + fleet["markers"] == fleet["leaflet_on_canvas"]
    assert fleet["labels"] == 0
    assert unclustered["markers"] == unclustered["leaflet_on_canvas"] >= 10000
    assert unclustered["clusters"] == 0
    # zoomed in: no clusters, exactly the devices Leaflet puts on the canvas
    assert 0 < region["leaflet_in_view"] == region["layer_in_view"] < 10000
    assert region["clusters"] == 0 and region["markers"] == region["leaflet_on_canvas"]
    for view in (fleet, region, unclustered):
        assert view["projection_error_px"] < 1e-6
    assert old["fleet"]["layer_in_view"] == fleet["layer_in_view"]
    # labels from zoom 12; hovering a bubble names its count; a click on it zooms in
    # (braces: returning the map from evaluate would serialise its whole object graph)
    page.evaluate("() => { window.shiptrack.map.setView([50.2, 9.0], 13, {animate: false}); }")
    page.wait_for_function("() => window.shiptrack.fleetLayer.drawnLabels > 0")
    labels = page.evaluate(
        "() => [window.shiptrack.fleetLayer.drawnLabels, window.shiptrack.fleetLayer.drawnMarkers]")
    assert labels[0] == labels[1]
    page.evaluate("() => { window.shiptrack.map.setView([50, 10.5], 6, {animate: false}); }")
    page.wait_for_function(
        "() => window.shiptrack.fleetLayer.drawnClusters > 0"
        " && window.shiptrack.map.getZoom() === 6")
    page.screenshot(path=str(ARTIFACTS / "dispatch-10k-clusters.png"))
    spot = page.evaluate("""() => {
        const layer = window.shiptrack.fleetLayer;
        const c = [...layer.clusters].sort((a, b) => b.count - a.count)[0];
        const p = window.shiptrack.map.layerPointToContainerPoint(
            [c.x + layer.origin.x, c.y + layer.origin.y]);
        const alpha = layer.canvas.getContext('2d')
            .getImageData(Math.round(c.x), Math.round(c.y), 1, 1).data[3];
        return {x: p.x, y: p.y, count: c.count, alpha};
    }""")
    assert spot["alpha"] > 0
    box = page.locator("#map").bounding_box()
    page.mouse.move(box["x"] + spot["x"], box["y"] + spot["y"])
    page.wait_for_selector(".fleet-tip:not([hidden])")
    assert page.locator(".fleet-tip").inner_text().startswith(f"{spot['count']} devices:")
    page.mouse.click(box["x"] + spot["x"], box["y"] + spot["y"])
    page.wait_for_function("() => window.shiptrack.map.getZoom() > 6")
    assert page.errors == []  # type: ignore[attr-defined]


def test_shipment_page_shows_eta_and_timeline_and_updates_live(
        stack: Stack, browser: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    r = stack.http.post("/api/v1/shipments", json={
        "reference": "ORD-7", "device_id": "van-7", "origin": {"lat": 52.40, "lon": 13.00},
        "destination": {"lat": 52.40, "lon": 13.90},
        "promised_by": (now + timedelta(hours=6)).isoformat(),
        "created_at": (now - timedelta(minutes=40)).isoformat()})  # before the fixes below
    assert r.status_code == 201, r.text
    ship = r.json()
    t = now - timedelta(minutes=30)
    for k, lon in enumerate([13.00, 13.00, 13.02, 13.05, 13.10, 13.15]):
        stack.fix("van-7", 52.40, lon, t + timedelta(minutes=2 * k), speed=22.0, heading=90.0)
    page = offline_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(f"{stack.base}{ship['tracking_url']}")
    page.wait_for_selector("#content:not([hidden])")
    assert page.inner_text("#brand-name") == "Acme Parcels"
    assert "help@acme.example" in page.inner_text("#contact")
    page.wait_for_function(
        "() => !/Not available/.test(document.getElementById('eta-main').textContent)")
    eta = page.inner_text("#eta-main")
    assert re.search(r"\d\d:\d\d", eta), eta
    assert "Times in" in page.inner_text("#zone")
    assert "Picked up" in page.inner_text("#timeline")
    # live: a manual status shows up without a reload
    assert stack.http.patch(f"/api/v1/shipments/{ship['id']}",
                            json={"status": "out_for_delivery"}).status_code == 200
    page.wait_for_function(
        "() => /Out for delivery/.test(document.getElementById('timeline').textContent)")
    page.screenshot(path=str(ARTIFACTS / "customer-phone.png"), full_page=False)
    # the subscribe form signs up for updates (a confirmation mail first)
    page.fill("#subscribe-email", "anna@example.com")
    page.click("#subscribe-form button[type=submit]")
    page.wait_for_selector("#subscribe-result:has-text('confirmation link')")
    [(state,)] = query(stack.settings.database_url or "",
                       "SELECT state FROM subscriptions WHERE address = 'anna@example.com'")
    assert state == "pending"
    assert stack.http.patch(f"/api/v1/shipments/{ship['id']}",
                            json={"status": "delivered"}).status_code == 200
    page.wait_for_function("() => document.getElementById('eta-title').textContent === 'Delivered'")
    assert page.locator(".step.done").count() == 5
    assert page.locator(".step.current").count() == 0
    assert page.locator("#map-note").is_hidden()
    page.screenshot(path=str(ARTIFACTS / "customer-delivered.png"), full_page=True)
    assert page.errors == []  # type: ignore[attr-defined]


def stored_excursion(stack: Stack) -> str:
    """A detector's exception as ingest stores it (its own event, and the shipment's): the
    shipment event's id."""
    db = stack.settings.database_url or ""
    now = datetime.now(UTC)
    detection = make_event("sensor.excursion", now, device_id="reefer-1", shipment_id="s-1",
                           data={"sensor": "temperature_c", "value": 9.18, "min": 2, "max": 8,
                                 "since": now.isoformat()})
    e = make_event("shipment.exception", now, device_id="reefer-1", shipment_id="s-1",
                   data={"kind": "sensor.excursion:temperature_c", "code": "sensor_excursion",
                         "reason": "temperature_c 9.18 outside 2..8", "source": "device"})
    for x in (detection, e):
        query(db, "INSERT INTO events (id, ts, type, device_id, shipment_id, data)"
              " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
              (x.id, x.ts, x.type, x.device_id, x.shipment_id, json.dumps(x.data)))
    return e.id


def exceptions_page(stack: Stack, browser: Any) -> Any:
    page = offline_page(browser)
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_function("() => window.shiptrack && window.shiptrack.booted")
    page.click("#tab-exceptions")
    return page


def test_acknowledging_in_one_browser_shows_in_another(stack: Stack, browser: Any) -> None:
    e_id = stored_excursion(stack)
    one, two = exceptions_page(stack, browser), exceptions_page(stack, browser)
    item = f"#event-list li[data-id='{e_id}']"
    one.wait_for_selector(item)
    text = one.inner_text(item)
    assert "Temperature out of range" in text and "9.2 °C, allowed 2\u20138 °C" in text
    assert not re.search(r"\d{4}-\d\d-\d\dT", text)  # no ISO timestamps
    assert "outside 2..8" not in text  # no machine text
    two.select_option("#queue-state", "acknowledged")
    one.fill("#dispatcher-name", "Ana")
    one.dispatch_event("#dispatcher-name", "change")
    one.fill(f"{item} .ack-note", "driver checks the unit")
    one.click(f"{item} button[type=submit]")
    two.wait_for_selector(f"{item}:has-text('Acknowledged by Ana')")
    assert "driver checks the unit" in two.inner_text(item)
    one.wait_for_selector("#queue-note:has-text('No open exceptions')")
    two.screenshot(path=str(ARTIFACTS / "exceptions-acknowledged.png"))


def test_the_queue_catches_up_on_what_happened_while_the_stream_was_down(
        stack: Stack, browser: Any) -> None:
    # no live event tells a page about an acknowledgement made while its stream was down:
    # the snapshot of the new connection makes it reload (the slow poll is 30 s away)
    e_id = stored_excursion(stack)
    page = exceptions_page(stack, browser)
    item = f"#event-list li[data-id='{e_id}']"
    page.wait_for_selector(item)
    page.evaluate("() => window.shiptrack.socket.stop()")
    page.wait_for_selector("#conn[data-state='stopped']")
    r = httpx.post(f"{stack.base}/api/v1/exceptions/{e_id}/acknowledge",
                   json={"by": "Bo", "note": "seen on the phone"},
                   headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    page.evaluate("() => window.shiptrack.socket.start()")
    page.wait_for_selector("#queue-note:has-text('No open exceptions')", timeout=10000)
    page.select_option("#queue-state", "acknowledged")
    page.wait_for_selector(f"{item}:has-text('Acknowledged by Bo')")


def test_docs_render_offline(stack: Stack, browser: Any) -> None:
    node_modules = Path(__file__).parents[2] / "dashboards" / "node_modules"
    if not (node_modules / "swagger-ui-dist").is_dir():
        if os.environ.get("CI"):
            pytest.fail("CI runs npm ci: swagger-ui-dist must be there")
        pytest.skip("npm ci was not run")
    page = offline_page(browser)
    page.goto(f"{stack.base}/docs")
    page.wait_for_selector(".swagger-ui .info .title:has-text('shiptrack')")
    page.wait_for_selector(".opblock-summary-path:has-text('/api/v1/exceptions')")
    page.screenshot(path=str(ARTIFACTS / "docs-offline.png"))


def test_creating_a_geofence_and_a_shipment_from_the_dashboard(
        stack: Stack, browser: Any) -> None:
    page = offline_page(browser, viewport={"width": 1400, "height": 900})
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.wait_for_function("() => window.shiptrack && window.shiptrack.booted")
    # a geofence pasted as GeoJSON; a bad one is refused with the server's reason
    page.click("#tab-geofences")
    page.click("#btn-new-geofence")
    page.fill("#geofence-name", "Depot Nord")
    page.fill("#geofence-json", '{"type": "Point", "coordinates": [13.4]}')
    page.click("#geofence-form button[type=submit]")
    page.wait_for_selector("#geofence-error:not([hidden])")
    page.fill("#geofence-json", json.dumps({"type": "Feature", "geometry": {
        "type": "Point", "coordinates": [13.4, 52.6]}, "properties": {"radius_m": 300}}))
    page.click("#geofence-form button[type=submit]")
    page.wait_for_selector("#geofence-list :text('Depot Nord')")
    # a polygon drawn by clicking three corners on the map
    page.click("#btn-new-geofence")
    page.fill("#geofence-name", "Yard")
    page.click("#btn-draw-polygon")
    box = page.locator("#map").bounding_box()
    for dx, dy in ((200, 200), (300, 200), (300, 300)):
        page.mouse.click(box["x"] + dx, box["y"] + dy)
    page.click("#btn-draw-finish")
    page.wait_for_selector("#geofence-list :text('Yard')")
    fences = stack.http.get("/api/v1/geofences").json()["items"]
    assert {f["properties"]["name"] for f in fences} >= {"Depot Nord", "Yard"}
    # a shipment from the form opens its view, with the customer page's link
    page.click("#tab-shipments")
    page.click("#btn-new-shipment")
    for field, value in (("new-reference", "UI-1"), ("new-device", "van-ui"),
                         ("new-origin-lat", "52.5"), ("new-origin-lon", "13.3"),
                         ("new-destination-lat", "52.6"), ("new-destination-lon", "13.4")):
        page.fill(f"#{field}", value)
    page.click("#shipment-form button[type=submit]")
    page.wait_for_selector("#shipment-view:not([hidden]) #shipment-title:has-text('UI-1')")
    assert "/t/" in (page.get_attribute("#shipment-link", "href") or "")
    # a manual status from the view
    page.select_option("#set-status", "picked_up")
    page.click("#status-form button[type=submit]")
    page.wait_for_selector("#shipment-milestones :text('Picked up')")
    [ship] = [s for s in stack.http.get("/api/v1/shipments").json()["items"]
              if s["reference"] == "UI-1"]
    assert ship["status"] == "picked_up"
    page.screenshot(path=str(ARTIFACTS / "dispatch-shipment.png"))
    assert page.errors == []  # type: ignore[attr-defined]


def test_connect_a_device_where_the_broker_checks_no_logins(stack: Stack, browser: Any) -> None:
    """The stack's broker runs without dynamic security: the credentials route answers 409
    identity_off, and the dialog says devices connect without a password (not an error)."""
    page = offline_page(browser)
    page.goto(f"{stack.base}/#token={TOKEN}")
    page.click("#btn-connect-device")
    page.fill("#connect-id", "truck-77")
    page.click("#connect-form button[type=submit]")
    page.wait_for_selector("#connect-result dl")
    assert page.locator("#connect-error").is_hidden()
    result = page.locator("#connect-result").inner_text()
    assert "devices connect without a password" in result
    assert "shiptrack/v1/devices/truck-77/position" in result
    assert page.errors == []  # type: ignore[attr-defined]
