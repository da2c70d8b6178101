"""What the web pages need from the server besides the API: ``/config.json`` (map tiles,
the sender's brand, the exceptions pairing, the statuses), the front-end packages from
the npm registry (``dashboards/node_modules``, installed by ``npm ci``) and ``/docs``
(Swagger UI from those packages: nothing from another host).

When the npm step was not run, the pages still work (Leaflet is vendored): the config
says which assets are missing, the map shows a note instead of the base layer, and
``/docs`` is a short page that says how to install them and links ``/openapi.json``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from shiptrack import exceptions
from shiptrack.config import Settings
from shiptrack.errors import ConfigError
from shiptrack.mqtturl import parse_mqtt_url
from shiptrack.shipments import STATUSES

NODE_MODULES = Path(str(resources.files("dashboards"))) / "node_modules"
NPM_PREFIX = "/static/vendor/npm"
# package -> the file the pages load from it (its presence says the package is there)
PACKAGES = {
    "world-atlas": "countries-50m.json",
    "topojson-client": "src/index.js",
    "swagger-ui-dist": "swagger-ui-bundle.js",
}
INSTALL_HINT = "npm ci --ignore-scripts --prefix dashboards"


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL (None for a path or other)."""
    parts = urlsplit(url.replace("{s}", "a").replace("{z}", "0").replace("{x}", "0")
                     .replace("{y}", "0"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def image_origins(settings: Settings) -> tuple[str, ...]:
    """Where the pages load images from besides themselves: tiles and the logo."""
    found = [origin(settings.map_tiles_url), origin(settings.brand_logo_url)]
    if "{s}" in settings.map_tiles_url:  # subdomains a, b, c
        found += [origin(settings.map_tiles_url.replace("{s}", s)) for s in "abc"]
    return tuple(sorted({o for o in found if o}))


def installed(root: Path = NODE_MODULES) -> dict[str, bool]:
    return {name: (root / name / entry).is_file() for name, entry in PACKAGES.items()}


def asset_url(name: str) -> str:
    return f"{NPM_PREFIX}/{name}/{PACKAGES[name]}"


def device_mqtt_url(settings: Settings) -> str | None:
    """The broker URL a device is told to use: the setting, else ours without secrets."""
    if settings.device_mqtt_url:
        return settings.device_mqtt_url
    try:
        return parse_mqtt_url(settings.mqtt_url).url if settings.mqtt_url else None
    except ConfigError:
        return None


def page_config(settings: Settings, present: dict[str, bool]) -> dict[str, Any]:
    base = present["world-atlas"] and present["topojson-client"]
    return {
        "map": {
            "tiles_url": settings.map_tiles_url or None,
            "attribution": settings.map_tiles_attribution,
            "max_zoom": settings.map_tiles_max_zoom,
            "base_layer": asset_url("world-atlas") if base else None,
            "topojson": asset_url("topojson-client") if base else None,
            "install_hint": None if base else INSTALL_HINT,
        },
        "brand": {
            "name": settings.brand_name or None, "logo_url": settings.brand_logo_url or None,
            "contact_email": settings.brand_contact_email or None,
            "contact_phone": settings.brand_contact_phone or None,
            "contact_url": settings.brand_contact_url or None,
        },
        "devices": {"mqtt_url": device_mqtt_url(settings),
                    "public_url": settings.public_url or None},
        "exceptions": exceptions.public_pairing(),
        "statuses": list(STATUSES),
        "stale_after_s": 600,
    }


def missing_docs_page() -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html lang=en><meta charset=utf-8><title>shiptrack API</title>"
        "<body style='font-family:sans-serif;max-width:40em;margin:2em auto'>"
        "<h1>shiptrack API</h1><p>The interactive documentation (Swagger UI) is not "
        f"installed here: run <code>{INSTALL_HINT}</code> and restart. The OpenAPI "
        "document is at <a href='/openapi.json'>/openapi.json</a>.</p></body></html>")


def install(app: FastAPI, settings: Settings, root: Path = NODE_MODULES) -> None:
    present = installed(root)
    for name, ok in present.items():
        if ok:
            app.mount(f"{NPM_PREFIX}/{name}", StaticFiles(directory=str(root / name)),
                      name=f"npm-{name}")
    config = page_config(settings, present)

    @app.get("/config.json", include_in_schema=False)
    async def web_config() -> JSONResponse:
        return JSONResponse(config, headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        if not present["swagger-ui-dist"]:
            return missing_docs_page()
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title="shiptrack API",
            swagger_js_url=f"{NPM_PREFIX}/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url=f"{NPM_PREFIX}/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg")
