"""docker-compose.yml, the Dockerfile, the Mosquitto config and Grafana provisioning.

No Docker engine runs here: these tests read the files and check them against the SPEC
and against each other (service graph, environment names, credentials that match on both
sides, mounted files that exist). The Mosquitto configs are also started with the local
``mosquitto`` binary when there is one.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from shiptrack.config import Settings
from shiptrack.embedded import free_port
from shiptrack.mqtturl import parse_mqtt_url

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
MOSQUITTO_DIR = ROOT / "deploy" / "mosquitto"
DURABILITY_CONF = MOSQUITTO_DIR / "conf.d" / "durability.conf"
GRAFANA_DIR = ROOT / "dashboards" / "grafana"

# The SPEC's configuration table; other SHIPTRACK_* names must be Settings fields.
SPEC_ENV = {
    "SHIPTRACK_DATABASE_URL",
    "SHIPTRACK_MQTT_URL",
    "SHIPTRACK_HTTP_HOST",
    "SHIPTRACK_HTTP_PORT",
    "SHIPTRACK_METRICS_PORT",
    "SHIPTRACK_ADMIN_TOKEN",
}
SETTINGS_ENV = {f"SHIPTRACK_{name.upper()}" for name in Settings.model_fields}
SHIPTRACK_SERVICES = {"migrate", "ingest", "api", "simulator"}
DB_TABLES = {"positions", "devices", "dead_letters"}

_VAR = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose-style ``${VAR}``, ``${VAR:-default}``, ``${VAR:?err}`` and ``$$``."""
    env = env or {}

    def sub(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise KeyError(f"{name} is required: {arg}")
        return ""

    return _VAR.sub(sub, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]  # type: ignore[no-any-return]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def depends(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Host path -> container path of the service's bind mounts (./...)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith(("./", "../", "/")):
            mounts[source] = target
    return mounts


# ---- services and their graph --------------------------------------------------------


def test_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {
        "timescaledb",
        "mosquitto",
        "migrate",
        "ingest",
        "api",
        "grafana",
        "simulator",
    }
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert "pg16" in services["timescaledb"]["image"]
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert services["grafana"]["image"].split(":")[0] in ("grafana/grafana", "grafana/grafana-oss")


def test_shiptrack_services_run_the_cli(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: services[name]["command"] for name in SHIPTRACK_SERVICES}
    assert commands["migrate"] == ["migrate"]
    assert commands["ingest"] == ["ingest"]
    assert commands["api"] == ["api"]
    assert commands["simulator"][0] == "simulate"
    assert commands["simulator"][commands["simulator"].index("--devices") + 1] == "20"
    images = {services[name]["image"] for name in SHIPTRACK_SERVICES}
    assert len(images) == 1, "one shiptrack image for all its services"
    for name in SHIPTRACK_SERVICES:
        build = services[name]["build"]
        context = build["context"] if isinstance(build, dict) else build
        assert (ROOT / context / "Dockerfile").is_file()


def test_simulator_only_under_a_profile(services: dict[str, dict[str, Any]]) -> None:
    assert services["simulator"]["profiles"] == ["sim"]
    for name, service in services.items():
        if name != "simulator":
            assert "profiles" not in service, name


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    assert depends(services["migrate"]) == {"timescaledb": "service_healthy"}
    assert "pg_isready" in " ".join(services["timescaledb"]["healthcheck"]["test"])
    assert "healthcheck" in services["mosquitto"]
    for name in ("ingest", "api"):
        deps = depends(services[name])
        assert deps["migrate"] == "service_completed_successfully", name
        assert deps["mosquitto"] == "service_healthy", name
    assert services["migrate"].get("restart") == "no"
    assert "mosquitto" in depends(services["simulator"])
    assert depends(services["grafana"]).get("migrate") == "service_completed_successfully"


def test_published_ports(services: dict[str, dict[str, Any]]) -> None:
    assert "8000:8000" in services["api"]["ports"]
    assert "1883:1883" in services["mosquitto"]["ports"]
    assert "3000:3000" in services["grafana"]["ports"]
    assert "ports" not in services["timescaledb"], "the database stays on the compose network"


# ---- environment ---------------------------------------------------------------------


def test_env_names_are_the_specs(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key in env_of(service):
            if key.startswith("SHIPTRACK_") and name in SHIPTRACK_SERVICES:
                assert key in SPEC_ENV | SETTINGS_ENV, f"{name}: unknown setting {key}"


def test_database_url_matches_timescaledb(services: dict[str, dict[str, Any]]) -> None:
    db_env = env_of(services["timescaledb"])
    expected = (
        f"postgresql://{db_env['POSTGRES_USER']}:{db_env['POSTGRES_PASSWORD']}"
        f"@timescaledb:5432/{db_env['POSTGRES_DB']}"
    )
    for name in ("migrate", "ingest", "api"):
        assert env_of(services[name])["SHIPTRACK_DATABASE_URL"] == expected, name
    assert db_env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")


def test_mqtt_urls_match_the_broker_users(services: dict[str, dict[str, Any]]) -> None:
    broker_env = env_of(services["mosquitto"])
    passwords = {
        "ingest": broker_env["MQTT_INGEST_PASSWORD"],
        "api": broker_env["MQTT_API_PASSWORD"],
        broker_env.get("MQTT_DEVICE_USER", "device"): broker_env["MQTT_DEVICE_PASSWORD"],
    }
    users = {"ingest": "ingest", "api": "api", "simulator": "device"}
    for name, user in users.items():
        raw = env_of(services[name])["SHIPTRACK_MQTT_URL"]
        target = parse_mqtt_url(interpolate(raw))
        assert (target.host, target.port, target.tls) == ("mosquitto", 1883, False), name
        assert target.username == user, name
        assert f":{passwords[user]}@" in raw, f"{name}: password differs from the broker's"


def test_api_settings(services: dict[str, dict[str, Any]]) -> None:
    env = env_of(services["api"])
    assert env["SHIPTRACK_HTTP_HOST"] == "0.0.0.0"
    assert env["SHIPTRACK_HTTP_PORT"] == "8000"
    assert env["SHIPTRACK_ADMIN_TOKEN"].startswith("${SHIPTRACK_ADMIN_TOKEN:?")
    with pytest.raises(KeyError):
        interpolate(env["SHIPTRACK_ADMIN_TOKEN"])
    assert interpolate(env["SHIPTRACK_ADMIN_TOKEN"], {"SHIPTRACK_ADMIN_TOKEN": "t"}) == "t"


def test_no_secret_is_written_in_the_file(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in env_of(service).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert value.startswith("${"), f"{name}.{key} must come from the environment"
    assert not (MOSQUITTO_DIR / "passwd").exists(), "the password file is generated, not kept"


# ---- files the stack mounts or builds from -------------------------------------------


def test_every_local_file_referenced_exists(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for source in bind_mounts(service):
            assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_mosquitto_config_mount(services: dict[str, dict[str, Any]]) -> None:
    service = services["mosquitto"]
    mounts = bind_mounts(service)
    assert mounts["./deploy/mosquitto"] == "/mosquitto/config"
    assert "mosquitto-data:/mosquitto/data" in service["volumes"]
    entry = " ".join(service["entrypoint"])
    script = entry.split("/mosquitto/config/")[1].split()[0]
    assert (MOSQUITTO_DIR / script).is_file()
    conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    assert re.search(r"^listener 1883$", conf, re.M)
    assert re.search(r"^allow_anonymous false$", conf, re.M)
    assert re.search(r"^password_file /mosquitto/passwd/passwd$", conf, re.M)
    assert re.search(r"^persistence_location /mosquitto/data/$", conf, re.M)
    include = re.search(r"^include_dir (\S+)$", conf, re.M)
    assert include and include[1] == "/mosquitto/config/conf.d"
    assert (MOSQUITTO_DIR / "passwd.example").is_file()
    start = (MOSQUITTO_DIR / "start.sh").read_text()
    assert "mosquitto_passwd -c -b" in start


def conf_options(path: Path) -> dict[str, str]:
    options = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            options[key] = value.strip()
    return options


def test_mosquitto_durability() -> None:
    options = conf_options(DURABILITY_CONF)
    assert options["max_queued_messages"] == "0"
    assert options["persistence"] == "true"
    inflight = int(options["max_inflight_messages"])
    assert inflight == 0 or 1000 <= inflight < 65535
    assert "persistence_location" not in options, "the including config names the path"
    assert "listener" not in options


def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(base == "python:3.11-slim" for base in bases)
    assert re.search(r'^ENTRYPOINT \["shiptrack"\]$', text, re.M)
    assert re.search(r"^USER (?!root)\S+", text, re.M), "the services do not run as root"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests"} <= set(ignored)


# ---- Grafana -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grafana_mounts(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return bind_mounts(services["grafana"])


def test_grafana_provisioning(
    services: dict[str, dict[str, Any]], grafana_mounts: dict[str, str]
) -> None:
    assert grafana_mounts["./dashboards/grafana/provisioning"] == "/etc/grafana/provisioning"
    datasources = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "shiptrack.yml").read_text()
    )["datasources"]
    assert len(datasources) == 1
    ds = datasources[0]
    db_env = env_of(services["timescaledb"])
    assert ds["type"] in ("grafana-postgresql-datasource", "postgres")
    assert ds["url"] == "timescaledb:5432"
    assert ds["user"] == db_env["POSTGRES_USER"]
    assert ds["jsonData"]["database"] == db_env["POSTGRES_DB"]
    password_var = re.fullmatch(r"\$\{(\w+)\}", ds["secureJsonData"]["password"])
    assert password_var, "the datasource password comes from the environment"
    assert env_of(services["grafana"])[password_var[1]] == db_env["POSTGRES_PASSWORD"]


def dashboards() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json")):
        yield path, json.loads(path.read_text())


def test_grafana_dashboard_provider(grafana_mounts: dict[str, str]) -> None:
    providers = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "dashboards" / "shiptrack.yml").read_text()
    )["providers"]
    paths = {p["options"]["path"] for p in providers}
    assert paths == {grafana_mounts["./dashboards/grafana/dashboards"]}
    assert list(dashboards()), "at least one dashboard"


def test_grafana_dashboards_query_the_documented_tables() -> None:
    ds_uid = yaml.safe_load(
        (GRAFANA_DIR / "provisioning" / "datasources" / "shiptrack.yml").read_text()
    )["datasources"][0]["uid"]
    for path, board in dashboards():
        assert board["uid"] and board["title"], path
        types = {panel["type"] for panel in board["panels"]}
        assert {"timeseries", "geomap"} <= types, path
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path}: duplicate panel ids"
        for panel in board["panels"]:
            assert panel["datasource"]["uid"] == ds_uid, panel["title"]
            for target in panel["targets"]:
                sql = target["rawSql"]
                # FROM of a table, not of extract(epoch FROM ...) or substring(x FROM n)
                tables = set(re.findall(r"(?<!epoch )\bFROM\s+([a-z_]+)\b", sql, re.I))
                assert tables <= DB_TABLES, f"{panel['title']}: {tables}"
                if panel["type"] == "timeseries":
                    assert "$__timeFilter(" in sql, panel["title"]


# ---- the configs run on a real broker ------------------------------------------------


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"mosquitto did not listen: {log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None or shutil.which("mosquitto_pub") is None,
    reason="no mosquitto binary",
)


@pytest.mark.mosquitto
@needs_mosquitto
def test_durability_conf_runs(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    conf = tmp_path / "test.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
        f"persistence_location {data}/\ninclude_dir {DURABILITY_CONF.parent}\n"
    )
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=out, stderr=out)
    try:
        wait_listening(port, proc, log)
    finally:
        stop(proc)
    assert (data / "mosquitto.db").is_file(), log.read_text()


@pytest.mark.mosquitto
@needs_mosquitto
def test_compose_broker_config_requires_the_generated_passwords(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "data").mkdir()
    conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    conf = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", conf, flags=re.M)
    conf = conf.replace("/mosquitto/passwd/passwd", str(tmp_path / "pw" / "passwd"))
    conf = conf.replace("/mosquitto/data/", f"{tmp_path}/data/")
    conf = conf.replace("/mosquitto/config/conf.d", str(DURABILITY_CONF.parent))
    conf += f"\nuser {getpass.getuser()}\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    env = {
        **os.environ,
        "MOSQUITTO_CONFIG": str(tmp_path / "mosquitto.conf"),
        "MOSQUITTO_PASSWORD_FILE": str(tmp_path / "pw" / "passwd"),
        "MQTT_INGEST_PASSWORD": "ingest-pw",
        "MQTT_API_PASSWORD": "api-pw",
        "MQTT_DEVICE_PASSWORD": "device-pw",
    }
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["sh", str(MOSQUITTO_DIR / "start.sh")], env=env, stdout=out, stderr=out
        )
    try:
        wait_listening(port, proc, log)

        def publish(*auth: str) -> int:
            cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "t", "-m", "x"]
            return subprocess.run([*cmd, *auth], capture_output=True, timeout=10).returncode

        assert publish() != 0, "anonymous clients are refused"
        assert publish("-u", "device", "-P", "wrong") != 0
        for user in ("ingest", "api", "device"):
            assert publish("-u", user, "-P", f"{user}-pw") == 0, user
    finally:
        stop(proc)
