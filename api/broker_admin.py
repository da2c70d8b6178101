"""Sends commands to Mosquitto's dynamic-security plugin (``$CONTROL/dynamic-security/v1``)
with the API's own broker login, and waits for the plugin's answer.

One short connection per request: credentials are issued rarely, and a connection of its
own never mixes with the live feed. Several API processes may do this at once: answers
are matched by their correlation ids.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiomqtt

from api.mqtt_publisher import broker_client
from shiptrack.broker_identity import (
    CONTROL_RESPONSE,
    CONTROL_TOPIC,
    control_errors,
    control_message,
)
from shiptrack.errors import BrokerError
from shiptrack.mqtturl import MqttTarget

log = logging.getLogger("shiptrack.api")
ANSWER_TIMEOUT_S = 5.0


class BrokerAdminError(BrokerError):
    """The broker did not carry out the commands (unreachable, no answer, refused)."""


async def run_commands(target: MqttTarget, commands: list[dict[str, Any]]) -> None:
    token, payload = control_message(commands)
    try:
        async with broker_client(target, "dynsec") as client:
            await client.subscribe(CONTROL_RESPONSE, qos=1)
            await client.publish(CONTROL_TOPIC, payload, qos=1)
            errors = await asyncio.wait_for(_answer(client, commands, token), ANSWER_TIMEOUT_S)
    except (aiomqtt.MqttError, TimeoutError) as exc:
        raise BrokerAdminError(f"the broker did not answer ({type(exc).__name__})") from exc
    if errors:
        log.warning("dynamic security refused: %s", "; ".join(errors))
        raise BrokerAdminError("the broker refused: " + "; ".join(errors))


async def _answer(client: aiomqtt.Client, commands: list[dict[str, Any]],
                  token: str) -> list[str]:
    async for message in client.messages:
        try:
            response = json.loads(bytes(message.payload))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if isinstance(response, dict):
            errors = control_errors(commands, response, token)
            if errors is not None:
                return errors
    raise BrokerAdminError("connection closed before the answer")
