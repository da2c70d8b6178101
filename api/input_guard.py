"""The first thing every HTTP request meets (pure ASGI, before routing and auth):

- a body over ``SHIPTRACK_MAX_BODY_BYTES`` gets 413: at once when ``Content-Length``
  says so (nothing is read), else as soon as the bytes received pass the limit (a
  chunked upload is cut off there, never buffered whole), before any route or token
  check runs;
- NUL or invalid Unicode (invalid UTF-8, a lone surrogate escape) in the path, the query
  string or any string or key of a JSON body gets 422, with the SPEC's error shape and
  where it was. PostgreSQL's ``text`` and ``jsonb`` cannot hold U+0000, so this is the
  one place that keeps it out of every route.

The body is read (within the limit: the API takes no streaming uploads), a JSON one
checked, and handed to the app unchanged.
WebSocket handshakes get the path and query check (closed with 1008).
"""

from __future__ import annotations

import json
import logging
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from shiptrack.errors import ShiptrackError
from shiptrack.jsontree import find_bad_text

log = logging.getLogger("shiptrack.api")


class Refused(ShiptrackError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _text_problem(raw: bytes) -> str | None:
    if b"\x00" in raw:
        return "a NUL byte"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid UTF-8"
    return None


def check_target(raw_path: bytes, query: bytes) -> None:
    """``Refused`` (422) when the percent-decoded path or query holds NUL or bad UTF-8."""
    problem = _text_problem(unquote_to_bytes(raw_path))
    if problem is not None:
        raise Refused(422, "invalid", f"the path holds {problem}")
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        for part, what in ((name, "name"), (value, "value")):
            problem = _text_problem(unquote_to_bytes(part.replace(b"+", b" ")))
            if problem is not None:
                shown = unquote_to_bytes(name).decode("utf-8", "replace").replace("\x00", "")
                raise Refused(422, "invalid", f"the query parameter {shown[:40]!r} ({what}) "
                              f"holds {problem}")


def check_json_body(body: bytes) -> None:
    """``Refused`` (422) for a JSON body with invalid UTF-8, or NUL / a lone surrogate in
    a string or key. A body that is not JSON at all is left to the route (400)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refused(422, "invalid", f"the body is not valid UTF-8 (byte {exc.start})") \
            from exc
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise Refused(422, "invalid", "the body nests too deep") from exc
    except ValueError:
        return
    found = find_bad_text(value)
    if found is not None:
        where, problem = found
        raise Refused(422, "invalid", f"the body holds {problem} at {where}")


def is_json(scope: Scope) -> bool:
    """A JSON body, or one without a content type (which FastAPI parses as JSON too)."""
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            kind = bytes(value).split(b";")[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return True


def declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class InputGuard:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            check_target(scope.get("raw_path") or scope["path"].encode(),
                         scope.get("query_string", b""))
        except Refused as exc:
            await self._refuse(scope, send, exc)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_body:
            await self._refuse(scope, send, self._too_large(length))
            return
        await self._buffered(scope, receive, send)

    def _too_large(self, size: int | None = None) -> Refused:
        said = f"{size} bytes" if size is not None else "more"
        return Refused(413, "too_large", f"the body ({said}) is over the limit of "
                       f"{self.max_body} bytes (SHIPTRACK_MAX_BODY_BYTES)")

    async def _read(self, receive: Receive) -> bytes:
        """The whole body, or ``Refused`` (413) as soon as it passes the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise Refused(400, "bad_request", "the client went away")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._read(receive)
            if body and is_json(scope):
                check_json_body(body)
        except Refused as exc:
            await self._refuse(scope, send, exc)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, send: Send, exc: Refused) -> None:
        log.info("refused %s %s: %s", scope.get("method", "WS"),
                 scope.get("path", "").replace("\x00", "\\x00")[:200], exc.message)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps(error_body(exc.code, exc.message)).encode()
        headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())]
        if exc.status == 413:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": exc.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def install(app: FastAPI, max_body_bytes: int) -> None:
    app.add_middleware(InputGuard, max_body_bytes=max_body_bytes)
