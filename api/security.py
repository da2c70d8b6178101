"""Security headers and CORS.

Every HTTP answer gets ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy:
no-referrer``; the API's (``/api/...``) also ``Cache-Control: no-store`` unless the
route set one (they carry tokens, secrets and private data); the web pages (``/``,
``/t/...``, ``/static/...``) also get a Content Security Policy that allows our own
scripts, OpenStreetMap tiles, and WebSockets to the same origin, and forbids framing
(``frame-ancestors 'none'``, ``X-Frame-Options: DENY``). CORS is off unless
``SHIPTRACK_CORS_ORIGINS`` lists origins (comma-separated, or ``*``).
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TILES = "https://tile.openstreetmap.org"
SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
PAGE_PREFIXES = ("/t/", "/static/", "/n/")

COMMON = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
NO_STORE = (b"cache-control", b"no-store")


def content_security_policy(host: str | None, img_origins: tuple[str, ...] = (TILES,)) -> str:
    connect = "'self'"
    if host and SAFE_HOST.match(host):  # 'self' covers ws: only in CSP3 browsers
        connect += f" ws://{host} wss://{host}"
    return "; ".join([
        "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'",
        " ".join(["img-src 'self' data:", *img_origins]), f"connect-src {connect}",
        "font-src 'self'",
        "object-src 'none'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def is_page(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


class SecurityHeaders:
    """Pure ASGI middleware (no effect on WebSockets, no body buffering)."""

    def __init__(self, app: ASGIApp, img_origins: tuple[str, ...] = (TILES,)) -> None:
        self.app = app
        self.img_origins = img_origins  # map tiles and logos the pages may load

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(COMMON)
        if scope.get("path", "").startswith("/api/"):
            extra.append(NO_STORE)  # tokens, secrets and private data: never cached
        if is_page(scope.get("path", "")):
            host = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                         if k == b"host"), None)
            csp = content_security_policy(host, self.img_origins)
            extra += [(b"content-security-policy", csp.encode()),
                      (b"x-frame-options", b"DENY")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                has_cache = any(k.lower() == NO_STORE[0] for k, _ in headers)
                message["headers"] = [*headers, *(h for h in extra
                                                  if not (h == NO_STORE and has_cache))]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def parse_origins(value: str) -> list[str]:
    return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]


def install(app: FastAPI, cors_origins: str, img_origins: tuple[str, ...] = (TILES,)) -> None:
    origins = parse_origins(cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=origins, allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"], max_age=600,
        )
    app.add_middleware(SecurityHeaders, img_origins=img_origins)
