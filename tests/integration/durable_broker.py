"""A Mosquitto started from the project's own durability config
(``deploy/mosquitto/conf.d/durability.conf``), on a port of its own, restartable with its
persistence kept: what the delivery-guarantee tests run against."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from shiptrack.embedded import free_port, mqtt_connect_ok

CONF_D = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "conf.d"


class DurableMosquitto:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        if binary is None:
            raise FileNotFoundError("no mosquitto binary")
        self.binary = binary
        self.port = free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            f"persistence_location {workdir}/",
            f"log_dest file {workdir}/mosquitto.log",
            f"include_dir {CONF_D}",
        ]
        if os.geteuid() == 0:
            lines.insert(0, "user root")  # else it drops to 'mosquitto' and cannot write here
        self.config.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> str:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not mqtt_connect_ok("127.0.0.1", self.port, timeout=1.0):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                log = (self.workdir / "mosquitto.log")
                raise RuntimeError(f"mosquitto did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        return self.url

    def stop(self) -> None:
        """Graceful stop: Mosquitto writes its persistence file on SIGTERM."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
