"""The web pages in dashboards/static: assets exist, scripts use only the API's endpoints
(read from the app's routes, with the query parameters each declares).

The API serves ``index.html`` at ``/``, ``track.html`` at ``/t/{tracking_token}`` and the
folder at ``/static/``; the pages are plain HTML and ES modules, no build step.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import routing

from api.app import create_app
from shiptrack.config import Settings

STATIC = Path(__file__).resolve().parents[2] / "dashboards" / "static"
PAGES = ("index.html", "track.html")
SCRIPTS = sorted(str(p.relative_to(STATIC)) for p in STATIC.rglob("*.js")
                 if "vendor" not in p.parts)

# Query parameters a WebSocket handler reads from ``ws.query_params`` itself, so its route
# does not declare them (checked against the source below).
WS_QUERY: dict[str, set[str]] = {"/ws/fleet": {"token", "ticket"}}


def app_endpoints() -> dict[str, set[str]]:
    """The app's ``/api/`` and ``/ws/`` paths (``{param}`` as ``{}``) and the query
    parameters each takes, read from its routes."""
    unused = Settings(database_url="postgresql://unused@127.0.0.1:1/unused",
                      mqtt_url="mqtt://127.0.0.1:1")
    app = create_app(unused, "x" * 24)  # only to list its routes: nothing is started
    found: dict[str, set[str]] = {}
    for context in routing.iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, routing.APIRoute | routing.APIWebSocketRoute):
            continue
        path = re.sub(r"\{[^}]+\}", "{}", context.path or "")
        if path.startswith(("/api/", "/ws/")):
            found.setdefault(path, set()).update(
                p.alias for p in route.dependant.query_params)
    for path, params in WS_QUERY.items():
        found[path] |= params
    return found


ENDPOINTS = app_endpoints()


def test_the_websocket_query_parameters_are_read_by_the_api() -> None:
    source = "".join(p.read_text() for p in (STATIC.parents[1] / "api").glob("*.py"))
    for params in WS_QUERY.values():
        for name in params:
            assert f'query_params.get("{name}")' in source, name


class Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append((tag, name, value))


def parse(page: str) -> Refs:
    parser = Refs()
    parser.feed((STATIC / page).read_text())
    return parser


def js(name: str) -> str:
    return (STATIC / name).read_text()


@pytest.mark.parametrize("page", PAGES)
def test_page_assets_exist(page: str) -> None:
    refs = parse(page).refs
    assets = [value for tag, _, value in refs if tag in ("script", "link")]
    assert any(v.endswith("leaflet.js") for v in assets)
    for value in assets:
        assert value.startswith("/static/"), f"{page}: {value} (no CDN, served by the API)"
        assert (STATIC / value.removeprefix("/static/")).is_file(), f"{page}: missing {value}"


@pytest.mark.parametrize("page", PAGES)
def test_page_is_accessible(page: str) -> None:
    parser = parse(page)
    text = (STATIC / page).read_text()
    assert re.search(r'<html lang="\w+', text)
    assert "<title>" in text and 'name="viewport"' in text
    labelled = {attrs.get("for") for tag, attrs in parser.tags if tag == "label"}
    for tag, attrs in parser.tags:
        if tag in ("input", "select", "textarea") and attrs.get("type") != "checkbox":
            assert attrs.get("id") in labelled or attrs.get("aria-label"), f"{page}: {attrs}"


def test_module_imports_exist() -> None:
    for name in SCRIPTS:
        for target in re.findall(r"""from\s+['"](\.\.?/[^'"]+)['"]""", js(name)):
            assert ((STATIC / name).parent / target).is_file(), f"{name} imports missing {target}"


def test_leaflet_is_vendored() -> None:
    vendor = STATIC / "vendor" / "leaflet"
    assert "Leaflet 1.9.4" in (vendor / "leaflet.js").read_text()[:300]
    assert (vendor / "LICENSE").is_file()
    css = (vendor / "leaflet.css").read_text()
    for image in re.findall(r"url\((images/[^)]+)\)", css):
        assert (vendor / image).is_file(), image


def endpoints(source: str) -> list[str]:
    """Every API or WebSocket path in string and template literals, ${...} as {}."""
    found = []
    for literal in re.findall(r"`[^`]*`|'[^'\n]*'|\"[^\"\n]*\"", source):
        body = re.sub(r"\$\{[^}]*\}", "{}", literal[1:-1])
        if body.startswith(("/api/", "/ws/")):
            found.append(body)
    return found


def test_scripts_use_only_the_apis_endpoints() -> None:
    seen = set()
    for name in SCRIPTS:
        for url in endpoints(js(name)):
            path, _, query = url.partition("?")
            assert path in ENDPOINTS, f"{name}: {path} is not an endpoint of the API"
            params = {part.split("=")[0] for part in query.split("&") if part}
            params.discard("{}")  # a query string built elsewhere (URLSearchParams)
            assert params <= ENDPOINTS[path], f"{name}: {url}"
            seen.add(path)
    assert {
        "/api/v1/devices",
        "/api/v1/devices/{}/track",
        "/api/v1/shipments",
        "/api/v1/events",
        "/api/v1/geofences",
        "/api/v1/track/{}",
        "/ws/fleet",
        "/ws/track/{}",
    } <= seen


def test_scripts_insert_text_not_html() -> None:
    for name in SCRIPTS:
        source = js(name)
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{name} uses {sink}"
        # Leaflet parses string content as HTML: tooltips and popups get DOM nodes.
        assert not re.search(r"bind(Tooltip|Popup)\(\s*[`'\"]", source), name


def test_map_tiles_are_attributed() -> None:
    from shiptrack.config import Settings

    settings = Settings()
    assert settings.map_tiles_url.startswith("https://tile.openstreetmap.org/")
    assert "OpenStreetMap" in settings.map_tiles_attribution
    assert "attribution" in js("js/map.js")


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to parse the modules")
@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_parse(name: str, tmp_path: Path) -> None:
    module = tmp_path / f"{Path(name).stem}.mjs"
    module.write_text(js(name))  # --check parses only: its imports need not resolve
    result = subprocess.run(["node", "--check", str(module)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_node_unit_tests_of_the_pure_modules() -> None:
    """``node --test`` over dashboards/tests (state, events, customer words, time zones)."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs node for the front end's unit tests")
        pytest.skip("no node")
    env = {**os.environ, "LC_ALL": "en_GB.UTF-8", "TZ": "UTC"}
    result = subprocess.run([node, "--test", "tests/"], cwd=STATIC.parent, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"^# fail 0$", result.stdout, re.M), result.stdout[-2000:]
