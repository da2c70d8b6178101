"""A Mosquitto started from the compose stack's own config (``deploy/mosquitto/``: the
dynamic-security plugin, no anonymous clients, the durability settings), on a port of
its own, with the service logins written by the same code as ``shiptrack
broker-config``: what the device-identity tests run against."""

from __future__ import annotations

import getpass
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from shiptrack.broker_auth import find_plugin, update_plugin_file
from shiptrack.broker_identity import API_USER, INGEST_USER
from shiptrack.embedded import free_port, mqtt_connect_ok

MOSQUITTO_DIR = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


class IdentityMosquitto:
    def __init__(self, workdir: Path, prefix: str) -> None:
        binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
        plugin = find_plugin()
        if binary is None or plugin is None:
            raise FileNotFoundError("no mosquitto binary or no dynamic-security plugin")
        self.binary, self.port, self.workdir = binary, free_port(), workdir
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.plugin_file = workdir / "dynamic-security.json"
        self.passwords = {INGEST_USER: "ingest-pw", API_USER: "api-pw"}
        update_plugin_file(self.plugin_file, self.passwords, prefix)
        conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
        for pattern, value in [
            (r"^listener 1883$", f"listener {self.port} 127.0.0.1"),
            (r"^plugin \S+$", f"plugin {plugin}"),
            (r"^plugin_opt_config_file \S+$", f"plugin_opt_config_file {self.plugin_file}"),
            (r"^persistence_location \S+$", f"persistence_location {workdir}/data/"),
            (r"^include_dir \S+$", f"include_dir {MOSQUITTO_DIR / 'conf.d'}"),
            (r"^log_dest stdout$", f"log_dest file {workdir}/mosquitto.log"),
        ]:
            conf, n = re.subn(pattern, value, conf, flags=re.M)
            assert n == 1, pattern
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(conf + f"\nuser {getpass.getuser()}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str | None = None, password: str | None = None) -> str:
        if user is None:
            return f"mqtt://127.0.0.1:{self.port}"
        return f"mqtt://{user}:{password or self.passwords[user]}@127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        login = (API_USER, self.passwords[API_USER])
        while not mqtt_connect_ok("127.0.0.1", self.port, timeout=1.0, login=login):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                log = self.workdir / "mosquitto.log"
                raise RuntimeError(f"mosquitto did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None
