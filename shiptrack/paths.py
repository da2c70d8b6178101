"""Where shiptrack keeps local state: the embedded servers' data and the generated
admin token (``SHIPTRACK_DATA_DIR``, default the per-user data directory)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import platformdirs

from shiptrack.config import Settings
from shiptrack.errors import ConfigError

MIN_ADMIN_TOKEN = 24  # characters of a configured admin token (a generated one has 46)


def data_dir(settings: Settings) -> Path:
    path = Path(settings.data_dir) if settings.data_dir else Path(
        platformdirs.user_data_dir("shiptrack")
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def running_up(settings: Settings) -> tuple[str | None, str | None]:
    """The MQTT URL of the embedded broker of a ``shiptrack up`` running on this data dir
    (None when none runs) and the admin token it generated (None when none was)."""
    base = Path(settings.data_dir) if settings.data_dir else Path(
        platformdirs.user_data_dir("shiptrack"))
    url = _read(base / "broker" / "url")
    logins = _read(base / "broker" / "service-logins.json")  # device identity on: a login
    if url and logins:
        import json

        password = json.loads(logins).get("simulator")
        scheme, _, rest = url.partition("://")
        url = f"{scheme}://simulator:{password}@{rest}" if password else url
    return url, _read(base / "admin-token")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def admin_token(settings: Settings) -> tuple[str, bool]:
    """The admin token: ``SHIPTRACK_ADMIN_TOKEN``, else one generated at first start and
    kept (mode 0600) in the data directory. Returns it and whether it was just made."""
    if settings.admin_token:
        if len(settings.admin_token) < MIN_ADMIN_TOKEN:
            raise ConfigError(f"SHIPTRACK_ADMIN_TOKEN is {len(settings.admin_token)} characters;"
                              f" use at least {MIN_ADMIN_TOKEN} (e.g. openssl rand -hex 24)")
        return settings.admin_token, False
    path = data_dir(settings) / "admin-token"
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token, False
    token = "st_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, True


def tracking_key(settings: Settings) -> str:
    """The key that makes tracking tokens: ``SHIPTRACK_TRACKING_KEY``, else one generated
    at first start and kept (mode 0600) in the data directory, so links outlive a change
    of the admin token."""
    if settings.tracking_key:
        return settings.tracking_key
    path = data_dir(settings) / "tracking-key"
    if path.exists() and path.read_text().strip():
        return path.read_text().strip()
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key

