"""Close stream clients with 1001 (going away) when the server is asked to stop.

uvicorn, on SIGINT/SIGTERM, stops accepting, then closes every WebSocket with 1012
(service restart) before the application's lifespan shutdown runs, so the application
cannot say goodbye from there. While the API serves, ``close_streams_on_signal`` puts a
handler in front of the one in place (uvicorn's): it closes the hub's clients with 1001,
waits briefly for the close frames to go out, then hands the signal on unchanged.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from api.hub import Hub

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def close_streams_on_signal(hub: Hub) -> Callable[[], None]:
    """Install the handlers (main thread only); returns what restores the previous ones."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {sig: signal.getsignal(sig) for sig in SIGNALS}
    tasks: set[asyncio.Task[None]] = set()

    def pass_on(signum: int, frame: FrameType | None) -> None:
        prev = previous[signum]
        if callable(prev):
            prev(signum, frame)
        else:  # SIG_DFL / SIG_IGN: restore it and raise again
            signal.signal(signum, prev)
            signal.raise_signal(signum)

    async def close_then_pass_on(signum: int, frame: FrameType | None) -> None:
        try:
            await hub.close_all(wait=2.0)
        finally:
            pass_on(signum, frame)

    def start(signum: int, frame: FrameType | None) -> None:
        task = loop.create_task(close_then_pass_on(signum, frame))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def handler(signum: int, frame: FrameType | None) -> None:
        if hub.closing:  # a second signal: straight on (uvicorn forces the exit)
            pass_on(signum, frame)
            return
        hub.closing = True
        loop.call_soon_threadsafe(start, signum, frame)

    for sig in SIGNALS:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, prev in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, prev)

    return restore
