"""What both WebSocket streams share: the per-client send loop, the receive loop, auth
denial, and closing.

One task per client writes to its socket (``pump``): it sleeps until the hub wakes it,
takes everything pending and sends it. Everything the server says to a client (snapshot,
errors, pongs) goes through the client's outbox, so there is a single writer. Client
messages are JSON objects; anything else gets an ``error`` message back, never a dropped
connection. ``{"type":"ping"}`` is answered with ``{"type":"pong"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec
from fastapi import WebSocket
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api.errors import error_body
from api.hub import SENT, Hub, Subscriber
from shiptrack.errors import InputError

log = logging.getLogger("shiptrack.api")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

CLOSE_POLICY = 1008
MAX_CLIENT_MESSAGE = 64 * 1024
MESSAGES_PER_SECOND = 20  # client messages beyond this get a rate_limited error

PONG = '{"type":"pong"}'


class ClientMessageError(InputError):
    """A client message we cannot act on; its text goes back as an error message."""

    def __init__(self, message: str, code: str = "bad_message") -> None:
        super().__init__(message)
        self.code = code


def error_text(code: str, message: str) -> str:
    return _encoder.encode({"type": "error", "error": {"code": code, "message": message}}).decode()


def encode(msg: Any) -> str:
    return _encoder.encode(msg).decode()


async def deny(ws: WebSocket, status: int, code: str, message: str,
               headers: dict[str, str] | None = None) -> None:
    """Refuse a handshake with an HTTP status and the SPEC's error body, where the
    server supports it (uvicorn does); else close with 1008."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        await ws.send_denial_response(JSONResponse(error_body(code, message), status,
                                                   headers=headers))
    else:
        await ws.close(CLOSE_POLICY, message)


async def pump(ws: WebSocket, sub: Subscriber) -> None:
    """Send the subscriber's outbox until it is closed."""
    send = ws.send_text
    while sub.close_code is None:
        await sub.wake.wait()
        if sub.close_code is not None:
            return
        batch = sub.drain()
        sub.sending_since = time.monotonic()
        for text in batch:
            await send(text)
        sub.sending_since = None
        SENT.inc(len(batch))


Handler = Callable[[dict[str, Any]], Awaitable[None]]


async def listen(ws: WebSocket, sub: Subscriber, handle: Handler) -> None:
    """Read client messages until it disconnects; each bad one gets an error back."""
    window_start, count = time.monotonic(), 0
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        now = time.monotonic()
        if now - window_start >= 1.0:
            window_start, count = now, 0
        count += 1
        try:
            if count > MESSAGES_PER_SECOND:
                raise ClientMessageError("too many messages; at most 20 per second",
                                         "rate_limited")
            msg = parse_client_message(message.get("text"))
            if msg.get("type") == "ping":
                sub.offer_other(PONG, now)
            else:
                await handle(msg)
        except ClientMessageError as exc:
            sub.offer_other(error_text(exc.code, str(exc)), now)
        except Exception:
            log.exception("failed to handle a stream client's message")
            sub.offer_other(error_text("unavailable", "could not do that now; try again"), now)


def parse_client_message(text: str | None) -> dict[str, Any]:
    if text is None:
        raise ClientMessageError("send JSON text messages, not binary")
    if len(text) > MAX_CLIENT_MESSAGE:
        raise ClientMessageError("message too large")
    try:
        msg = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise ClientMessageError(f"not JSON: {exc}") from exc
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ClientMessageError('expected a JSON object with a "type"')
    return msg


async def serve(ws: WebSocket, hub: Hub, sub: Subscriber, handle: Handler,
                extra: Iterable[Awaitable[None]] = ()) -> None:
    """Run an accepted stream whose first message is already in the outbox: send, read
    and ``extra`` tasks until one ends; then close with the subscriber's close code."""
    sub.sender = asyncio.create_task(pump(ws, sub))
    tasks = [sub.sender, asyncio.create_task(listen(ws, sub, handle)),
             *(asyncio.ensure_future(t) for t in extra)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        hub.remove(sub)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(
                result, asyncio.CancelledError | WebSocketDisconnect | OSError | RuntimeError):
            log.error("stream task failed", exc_info=result)
    if sub.close_code is not None:
        await close(ws, sub.close_code, sub.close_reason)


async def close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state != WebSocketState.CONNECTED or \
            ws.client_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code, reason[:120]), timeout=5)
