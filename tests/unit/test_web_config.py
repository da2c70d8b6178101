"""What the pages get from the server (api/web.py): tiles and their CSP origins, the
brand, the npm assets when installed and a clear note when not."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from api import web
from api.security import content_security_policy
from shiptrack.config import Settings


def test_tile_and_logo_origins_reach_the_csp() -> None:
    s = Settings(map_tiles_url="https://{s}.tiles.example.net:8443/{z}/{x}/{y}.png",
                 brand_logo_url="https://cdn.acme.example/logo.svg")
    origins = web.image_origins(s)
    assert "https://a.tiles.example.net:8443" in origins
    assert "https://cdn.acme.example" in origins
    assert "https://{s}" not in " ".join(origins)
    csp = content_security_policy("127.0.0.1:8000", origins)
    assert "img-src 'self' data: https://a.tiles.example.net:8443" in csp
    assert web.image_origins(Settings(map_tiles_url="", brand_logo_url="/static/x.svg")) == ()


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_config_without_npm_assets(tmp_path: Path) -> None:
    app = FastAPI(docs_url=None, redoc_url=None)
    s = Settings(mqtt_url="mqtt://ingest:secret@broker.example:1884", brand_name="Acme")
    web.install(app, s, root=tmp_path)
    async with client(app) as c:
        raw = await c.get("/config.json")
        docs = await c.get("/docs")
    body = raw.json()
    assert body["map"]["base_layer"] is None and "npm ci" in body["map"]["install_hint"]
    assert body["map"]["tiles_url"].startswith("https://tile.openstreetmap.org/")
    assert body["brand"]["name"] == "Acme"
    assert body["devices"]["mqtt_url"] == "mqtt://broker.example:1884"  # no credentials
    assert "secret" not in raw.text
    assert body["exceptions"]["kinds"]["device.offline"]["resolved_by"][0] == "device.online"
    assert docs.status_code == 200 and "npm ci" in docs.text and "/openapi.json" in docs.text


async def test_config_with_npm_assets(tmp_path: Path) -> None:
    for name, entry in web.PACKAGES.items():
        (tmp_path / name / entry).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name / entry).write_text("x")
    app = FastAPI(docs_url=None, redoc_url=None)
    web.install(app, Settings(), root=tmp_path)
    async with client(app) as c:
        body = (await c.get("/config.json")).json()
        assert body["map"]["base_layer"] == "/static/vendor/npm/world-atlas/countries-50m.json"
        assert (await c.get(body["map"]["topojson"])).status_code == 200
        assert "swagger-ui-bundle.js" in (await c.get("/docs")).text
        escape = await c.get("/static/vendor/npm/world-atlas/%2e%2e/%2e%2e/pyproject.toml")
        assert escape.status_code == 404
