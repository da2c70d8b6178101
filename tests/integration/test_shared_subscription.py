"""Two ingest processes share one subscription (MQTT 5 ``$share``): each takes part of
the stream, together they store every fix exactly once."""

from __future__ import annotations

import re
import signal

import httpx

from shiptrack.config import Settings
from shiptrack.embedded import free_port
from tests.helpers import ingest_process, publish, publish_until, query, wait_for
from tests.integration.test_durability import assert_exactly, messages, stored


def received(port: int) -> float:
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return -1.0
    match = re.search(r"^shiptrack_ingest_messages_received_total (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_two_processes_split_the_stream_and_store_it_once(durable: Settings) -> None:
    shared = durable.model_copy(update={"mqtt_shared_group": "ingest"})
    ports = [free_port(), free_port()]
    procs = [
        ingest_process(shared.model_copy(update={"mqtt_client_id": f"{shared.mqtt_client_id}-{i}"}),
                       metrics_port=port)
        for i, port in enumerate(ports)
    ]
    try:
        wait_for(lambda: all(received(p) >= 0 for p in ports), timeout=20)
        probe = messages(shared, 0, 1)
        # both members subscribed once a probe, re-sent, has landed and each is serving
        publish_until(shared.mqtt_url or "", probe, lambda: stored(shared) == 1)
        publish(shared.mqtt_url or "", messages(shared, 1, 1999))
        wait_for(lambda: stored(shared) == 2000, timeout=60)
        counts = [received(p) for p in ports]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    assert_exactly(shared, 2000)
    assert all(c > 100 for c in counts), counts  # both took a real share of the work
    assert sum(counts) >= 2000
    devices = query(shared.database_url or "", "SELECT count(*) FROM devices")
    assert devices[0][0] == 3
