"""The broker side of device identity, for ``shiptrack up`` and ``shiptrack broker-config``:
the dynamic-security plugin's file with the service logins, the logins kept in the data
directory, and the Mosquitto config lines that switch the plugin on.

Rules (who may do what) are in :mod:`shiptrack.broker_identity`; this module only reads
and writes files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiptrack import broker_identity as bi
from shiptrack.errors import ConfigError

PLUGIN_NAME = "mosquitto_dynamic_security.so"
PLUGIN_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib",
               "/usr/local/lib", "/opt/homebrew/lib", "/usr/lib64")
SERVICE_USERS = (bi.INGEST_USER, bi.API_USER, bi.SIMULATOR_USER)


def find_plugin() -> Path | None:
    """Mosquitto's dynamic-security plugin, where Debian, Alpine and Homebrew put it."""
    for directory in PLUGIN_DIRS:
        path = Path(directory) / PLUGIN_NAME
        if path.is_file():
            return path
    return None


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (mode 0600) atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def service_passwords(path: Path) -> dict[str, str]:
    """The service logins' passwords kept in ``path`` (made at first use, mode 0600)."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    passwords = {u: kept[u] for u in SERVICE_USERS if isinstance(kept.get(u), str)}
    if len(passwords) < len(SERVICE_USERS):
        passwords = {u: passwords.get(u) or bi.new_password() for u in SERVICE_USERS}
        write_private(path, json.dumps(passwords, indent=1) + "\n")
    return passwords


def update_plugin_file(path: Path, passwords: dict[str, str], prefix: str = "",
                       simulated: Iterable[str] = ()) -> None:
    """Set the service logins in the plugin's file, keeping every issued credential."""
    existing: dict[str, Any] | None = None
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is not the dynamic-security JSON: {exc}") from exc
    doc = bi.service_config(existing, passwords, prefix, simulated)
    write_private(path, json.dumps(doc, indent=1) + "\n")


def config_lines(plugin: Path, plugin_file: Path) -> list[str]:
    """What a Mosquitto config needs for device identity (instead of allow_anonymous)."""
    return ["allow_anonymous false", f"plugin {plugin}", f"plugin_opt_config_file {plugin_file}"]


@dataclass(frozen=True, slots=True)
class BrokerLogins:
    """The embedded broker's service logins (``shiptrack up``)."""

    lines: list[str]
    passwords: dict[str, str]

    def url(self, base: str, user: str) -> str:
        """``base`` (``mqtt://host:port``) with ``user``'s login in it."""
        scheme, _, rest = base.partition("://")
        return f"{scheme}://{user}:{self.passwords[user]}@{rest}"


def embedded_logins(broker_dir: Path, prefix: str, simulated: Iterable[str]) -> BrokerLogins:
    """Prepare ``broker_dir`` for an embedded Mosquitto that enforces device identity."""
    plugin = find_plugin()
    if plugin is None:
        raise ConfigError(f"mosquitto is on PATH but its {PLUGIN_NAME} is not in any of "
                          f"{', '.join(PLUGIN_DIRS)}; set SHIPTRACK_MQTT_ALLOW_ANONYMOUS=true "
                          "to run without device identity")
    broker_dir.mkdir(parents=True, exist_ok=True)
    passwords = service_passwords(broker_dir / "service-logins.json")
    plugin_file = broker_dir / "dynamic-security.json"
    update_plugin_file(plugin_file, passwords, prefix, simulated)
    return BrokerLogins(config_lines(plugin, plugin_file), passwords)
