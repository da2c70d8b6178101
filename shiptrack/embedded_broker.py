"""A minimal amqtt MQTT broker, run as ``python -m shiptrack.embedded_broker --port PORT``.

This is the fallback broker that :class:`shiptrack.embedded.EmbeddedBroker` starts when no
``mosquitto`` binary is on ``PATH``. It listens on one TCP listener (``127.0.0.1`` by
default), accepts every client, keeps no state on disk, and shuts down cleanly on
SIGTERM or SIGINT (exit status 0). It is meant for development and tests only; production
uses Mosquitto with the project's configuration.

amqtt quirk handled here: its ``AnonymousAuthPlugin`` marks every session it admits as
anonymous, and amqtt neither queues QoS 1/2 messages for a disconnected anonymous session
nor keeps the session at all. That would silently lose telemetry while a persistent
(``clean_session=False``) ingest client restarts, unlike Mosquitto. So this runner admits
clients with :class:`AcceptAllAuthPlugin`, which does not mark them anonymous.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

logger = logging.getLogger("shiptrack.embedded")

#: Disconnected persistent sessions (and their queued messages) are dropped after this.
SESSION_EXPIRY_SECONDS = 24 * 3600


class AcceptAllAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Admit every client, with or without credentials, as a non-anonymous session."""

    async def authenticate(self, *, session: Session) -> bool | None:
        return True


def broker_config(host: str, port: int) -> dict[str, Any]:
    """Return the amqtt ``BrokerConfig`` dictionary for one anonymous TCP listener."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # Only the auth plugin: no $SYS publisher, no per-packet logging.
        "plugins": {"shiptrack.embedded_broker.AcceptAllAuthPlugin": {}},
        # Keep disconnected persistent sessions (and their queued QoS1/2 messages) a day.
        "session_expiry_interval": SESSION_EXPIRY_SECONDS,
    }


async def serve(host: str, port: int) -> None:
    """Run the broker until SIGTERM or SIGINT arrives."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    broker = Broker(broker_config(host, port))
    await broker.start()
    logger.info("amqtt broker listening on %s:%d", host, port)
    try:
        await stop.wait()
    finally:
        logger.info("amqtt broker shutting down")
        await broker.shutdown()
        logger.info("amqtt broker stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m shiptrack.embedded_broker",
        description="Run a minimal anonymous amqtt MQTT broker.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--debug", action="store_true", help="log amqtt at DEBUG level")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("transitions").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(args.host, args.port))
    except Exception:
        logger.exception("amqtt broker failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
