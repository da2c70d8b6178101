"""Errors in the SPEC's shape: ``{"error": {"code": "...", "message": "..."}}``, never a
500 for bad input.

Every error leaves through one of the handlers installed here: ``ApiError`` (raised by
our code), the domain's errors (``ANSWERS``: the one mapping of shiptrack's hierarchy to
statuses and codes), Starlette's ``HTTPException`` (unknown path, wrong method), request
validation (query, path, body), the database being unreachable (503), and anything
else (a 500 in the same shape, logged). ``install`` also makes ``/openapi.json`` say so:
every 422 is this shape, and secured operations list 401 and 403.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shiptrack.errors import BrokerError, InputError, ShiptrackError, StorageError
from shiptrack.geofences import GeofenceError

log = logging.getLogger("shiptrack.api")

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "too_large",
         422: "invalid", 429: "rate_limited", 500: "internal", 503: "unavailable"}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"], "title": "Error",
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "details": {}},
    }},
    "example": {"error": {"code": "not_found", "message": "no device 'truck-99'"}},
}
# The domain's errors as answers (the nearest class of an error's MRO wins); a 503 says
# when to retry. A ShiptrackError not named here is a bug: a logged 500.
ANSWERS: dict[type[ShiptrackError], tuple[int, str]] = {
    InputError: (422, "invalid"),
    GeofenceError: (422, "invalid_geometry"),
    StorageError: (503, "unavailable"),
    BrokerError: (503, "unavailable"),
}
RETRY_AFTER = {"Retry-After": "5"}
PUBLIC_PREFIXES = ("/api/v1/track/",)
DESCRIPTIONS = {400: "Bad request (body not JSON, or a cursor this API did not return)",
                401: "Missing or invalid bearer token",
                403: "The token lacks the scope this needs", 404: "Not found",
                409: "Conflict", 422: "Invalid input", 503: "Database unavailable",
                429: "Too many bad credentials from this client (see Retry-After)"}


class ApiError(ShiptrackError):
    """An answer raised by a route: ``status``, ``code`` (default: the status's) and
    ``message``."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message
        self.headers = headers


def answer(exc: ShiptrackError) -> tuple[int, str]:
    """The status and code of a domain error (``ANSWERS``), 500 internal if none."""
    for cls in type(exc).__mro__:
        if cls in ANSWERS:
            return ANSWERS[cls]
    return 500, "internal"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: these statuses answer the SPEC's error shape."""
    return {s: {"description": DESCRIPTIONS.get(s, "Error"),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            for s in statuses}


def _describe(errors: list[Any]) -> str:
    parts = []
    for e in errors[:5]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("body",))
        parts.append(f"{loc}: {e.get('msg', 'invalid')}" if loc else str(e.get("msg")))
    return "; ".join(parts) or "invalid request"


def _jsonable(errors: list[Any]) -> list[dict[str, Any]]:
    return [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
             "type": str(e.get("type", ""))} for e in errors]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if exc.headers:
            headers = {**(headers or {}), **exc.headers}
        return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=headers)

    async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ShiptrackError)
        status, code = answer(exc)
        return JSONResponse(error_body(code, str(exc)), status,
                            headers=RETRY_AFTER if status == 503 else None)

    for cls in ANSWERS:
        app.add_exception_handler(cls, _domain_error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = CODES.get(exc.status_code, "error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _jsonable(list(exc.errors()))
        return JSONResponse(error_body("invalid", _describe(errors), errors), 422)

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, exc)
        return JSONResponse(error_body("unavailable", "database unavailable, try again"), 503,
                            headers=RETRY_AFTER)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal", "internal error"), 500)

    _document_errors(app)


def _document_errors(app: FastAPI) -> None:
    """Rewrite the generated OpenAPI document so that it describes our error bodies."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes, tags=app.openapi_tags, servers=app.servers)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        for path, item in doc.get("paths", {}).items():
            for op in item.values():
                if not isinstance(op, dict) or "responses" not in op:
                    continue
                extra = [422] if "422" in op["responses"] else []
                if "requestBody" in op:
                    extra.append(400)  # a body that is not JSON (or not UTF-8)
                if any(p.get("name") == "cursor" for p in op.get("parameters", ())):
                    extra.append(400)  # a cursor this API did not return
                if op.get("security"):
                    extra += [401, 403, 429]
                elif path.startswith("/api/") and not path.startswith(PUBLIC_PREFIXES):
                    extra += [401, 429]  # SPEC: bearer auth for everything but tracking
                if path.startswith("/api/"):
                    extra.append(503)
                for status, body in error_responses(*extra).items():
                    op["responses"][str(status)] = body
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
