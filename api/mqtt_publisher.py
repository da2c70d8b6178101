"""A long-lived aiomqtt connection for what the API hands to the broker (OwnTracks HTTP
mode): published at QoS 1 and confirmed by the broker's PUBACK before the API answers,
so the broker, not the API, holds the message from then on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import aiomqtt

from shiptrack.errors import BrokerError
from shiptrack.mqtturl import MqttTarget

log = logging.getLogger("shiptrack.api")


class BrokerUnavailable(BrokerError):
    pass


def broker_client(target: MqttTarget, role: str) -> aiomqtt.Client:
    """An aiomqtt client of the API (``role``: what it is for) with a unique client id."""
    return aiomqtt.Client(
        target.host, target.port, username=target.username, password=target.password,
        identifier=f"shiptrack-api-{role}-{uuid.uuid4().hex[:12]}",
        tls_params=aiomqtt.TLSParameters() if target.tls else None,
    )


class MqttPublisher:
    def __init__(self, target: MqttTarget) -> None:
        self.target = target
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def publish(self, topic: str, payload: bytes, wait_s: float = 10.0) -> None:
        client = self._client
        if client is None:
            raise BrokerUnavailable("not connected to the MQTT broker")
        try:
            await client.publish(topic, payload, qos=1, timeout=wait_s)
        except aiomqtt.MqttError as exc:
            raise BrokerUnavailable(str(exc)) from exc

    async def _run(self) -> None:
        delay = 1.0
        while True:
            try:
                async with broker_client(self.target, "pub") as client:
                    self._client = client
                    delay = 1.0
                    await asyncio.Future()  # hold the connection until cancelled
            except aiomqtt.MqttError as exc:
                log.warning("publisher lost the broker (%s); retrying in %.0f s", exc, delay)
            finally:
                self._client = None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
