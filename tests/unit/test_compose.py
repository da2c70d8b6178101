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
import sys
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
SHIPTRACK_SERVICES = {"migrate", "ingest", "api", "simulator", "broker-config"}
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
        "broker-config",
        "mosquitto",
        "migrate",
        "ingest",
        "api",
        "grafana",
        "simulator",
    }
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert "pg16" in services["timescaledb"]["image"]
    assert re.fullmatch(r"eclipse-mosquitto:2\.\d+\.\d+", services["mosquitto"]["image"])
    assert services["grafana"]["image"].split(":")[0] in ("grafana/grafana", "grafana/grafana-oss")


def test_shiptrack_services_run_the_cli(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: services[name]["command"] for name in SHIPTRACK_SERVICES}
    assert commands["migrate"] == ["migrate"]
    assert commands["broker-config"][0] == "broker-config"
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


def test_published_ports_listen_on_loopback_unless_asked(
    services: dict[str, dict[str, Any]]
) -> None:
    expected = {"api": 8000, "mosquitto": 1883, "grafana": 3000}
    for name, service in services.items():
        if name not in expected:
            assert "ports" not in service, f"{name} stays on the compose network"
            continue
        [port] = service["ports"]
        port_no = expected[name]
        assert interpolate(port) == f"127.0.0.1:{port_no}:{port_no}", name
        assert interpolate(port, {"SHIPTRACK_BIND": "0.0.0.0"}) == f"0.0.0.0:{port_no}:{port_no}"


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
    assert db_env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def test_mqtt_urls_match_the_broker_users(services: dict[str, dict[str, Any]]) -> None:
    config_env = env_of(services["broker-config"])
    passwords = {
        "ingest": config_env["MQTT_INGEST_PASSWORD"],
        "api": config_env["MQTT_API_PASSWORD"],
        "simulator": config_env["MQTT_SIMULATOR_PASSWORD"],
    }
    users = {"ingest": "ingest", "api": "api", "simulator": "simulator"}
    for name, user in users.items():
        raw = env_of(services[name])["SHIPTRACK_MQTT_URL"]
        secrets = {v: "x" for v in ("MQTT_INGEST_PASSWORD", "MQTT_API_PASSWORD",
                                    "MQTT_SIMULATOR_PASSWORD")}
        target = parse_mqtt_url(interpolate(raw, secrets))
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


def test_no_secret_is_written_in_the_file_and_none_has_a_default(
    services: dict[str, dict[str, Any]]
) -> None:
    for name, service in services.items():
        for key, value in env_of(service).items():
            if re.search(r"PASSWORD|TOKEN|SECRET", key):
                assert value.startswith("${"), f"{name}.{key} must come from the environment"
                with pytest.raises(KeyError):  # compose refuses to start without it
                    interpolate(value)
    text = COMPOSE.read_text()
    for default in re.findall(r"\$\{\w*(?:PASSWORD|TOKEN|SECRET)\w*(:?-[^}]*)\}", text):
        pytest.fail(f"a secret with a default: {default}")
    for url in re.findall(r"(?:mqtt|postgresql)://[^\s]+", text):
        if "@" in url:
            assert re.search(r":\$\{\w+:\?[^}]+\}@", url), f"a password in {url}"
    assert not list(MOSQUITTO_DIR.rglob("*.json")), "the plugin's file is generated, not kept"


def test_hardening(services: dict[str, dict[str, Any]]) -> None:
    tag = services["timescaledb"]["image"].split(":", 1)[1]
    assert re.fullmatch(r"\d+\.\d+\.\d+-pg16", tag), "a pinned TimescaleDB release"
    assert all("latest" not in s.get("image", "") for s in services.values())
    api = env_of(services["api"])
    assert api["SHIPTRACK_MQTT_DYNSEC"] == "true"
    config = services["broker-config"]
    assert config["network_mode"] == "none" and config["restart"] == "no"
    sim = services["simulator"]["command"]
    fleet = config["command"][config["command"].index("--simulate") + 1]
    assert fleet == sim[sim.index("--devices") + 1], "the simulator's login covers its fleet"
    assert "mosquitto-dynsec:/mosquitto/dynsec" in config["volumes"]
    assert "mosquitto-dynsec:/mosquitto/dynsec" in services["mosquitto"]["volumes"]
    assert depends(services["mosquitto"]) == {"broker-config": "service_completed_successfully"}
    assert "environment" not in services["mosquitto"], "the broker holds no secret"
    init = bind_mounts(services["timescaledb"])
    script = next(src for src, dst in init.items() if dst.startswith("/docker-entrypoint-initdb.d"))
    assert "CREATE ROLE shiptrack_readonly LOGIN PASSWORD :'pw'" in (ROOT / script).read_text()
    assert env_of(services["timescaledb"])["GRAFANA_DB_PASSWORD"].startswith(
        "${GRAFANA_DB_PASSWORD:?")


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
    assert re.search(r"^plugin /usr/lib/mosquitto_dynamic_security.so$", conf, re.M)
    assert re.search(r"^plugin_opt_config_file /mosquitto/dynsec/dynamic-security.json$", conf,
                     re.M)
    assert "password_file" not in conf
    assert re.search(r"^persistence_location /mosquitto/data/$", conf, re.M)
    include = re.search(r"^include_dir (\S+)$", conf, re.M)
    assert include and include[1] == "/mosquitto/config/conf.d"
    start = (MOSQUITTO_DIR / "start.sh").read_text()
    assert "/mosquitto/dynsec/dynamic-security.json" in start


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
    # a crash loses what changed since the last save: save after a bounded number of changes
    assert options["autosave_on_changes"] == "true"
    assert 1 <= int(options["autosave_interval"]) <= 1000
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
    assert ds["user"] == "shiptrack_readonly", "Grafana reads through the read-only role"
    assert ds["user"] != db_env["POSTGRES_USER"]
    assert ds["jsonData"]["database"] == db_env["POSTGRES_DB"]
    password_var = re.fullmatch(r"\$\{(\w+)\}", ds["secureJsonData"]["password"])
    assert password_var, "the datasource password comes from the environment"
    assert env_of(services["grafana"])[password_var[1]] == db_env["GRAFANA_DB_PASSWORD"]


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
def test_compose_broker_runs_dynamic_security_with_the_written_logins(tmp_path: Path) -> None:
    from shiptrack.broker_auth import find_plugin

    plugin = find_plugin()
    if plugin is None:
        pytest.skip("no dynamic-security plugin")
    port = free_port()
    (tmp_path / "data").mkdir()
    dynsec = tmp_path / "dynsec" / "dynamic-security.json"
    dynsec.parent.mkdir()
    conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    conf = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", conf, flags=re.M)
    conf = conf.replace("/usr/lib/mosquitto_dynamic_security.so", str(plugin))
    conf = conf.replace("/mosquitto/dynsec/dynamic-security.json", str(dynsec))
    conf = conf.replace("/mosquitto/data/", f"{tmp_path}/data/")
    conf = conf.replace("/mosquitto/config/conf.d", str(DURABILITY_CONF.parent))
    conf += f"\nuser {getpass.getuser()}\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    env = {**os.environ, "MOSQUITTO_CONFIG": str(tmp_path / "mosquitto.conf"),
           "MOSQUITTO_DYNSEC_FILE": str(dynsec)}
    missing = subprocess.run(["sh", str(MOSQUITTO_DIR / "start.sh")], env=env,
                             capture_output=True, timeout=10)
    assert missing.returncode != 0 and b"broker-config" in missing.stderr
    passwords = {"ingest": "ingest-pw", "api": "api-pw", "simulator": "sim-pw"}
    written = subprocess.run(
        [sys.executable, "-m", "shiptrack", "broker-config", str(dynsec), "--simulate", "20"],
        env={**os.environ, "MQTT_INGEST_PASSWORD": "ingest-pw", "MQTT_API_PASSWORD": "api-pw",
             "MQTT_SIMULATOR_PASSWORD": "sim-pw"}, capture_output=True, timeout=60)
    assert written.returncode == 0, written.stderr
    assert "sim-pw" not in dynsec.read_text() and "sim-0020" in dynsec.read_text()
    log = tmp_path / "log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["sh", str(MOSQUITTO_DIR / "start.sh")], env=env, stdout=out,
                                stderr=out)
    try:
        wait_listening(port, proc, log)

        def publish(*auth: str) -> int:
            cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "t", "-m", "x"]
            return subprocess.run([*cmd, *auth], capture_output=True, timeout=10).returncode

        assert publish() != 0, "anonymous clients are refused"
        assert publish("-u", "ingest", "-P", "wrong") != 0
        for user, password in passwords.items():
            assert publish("-u", user, "-P", password) == 0, user
    finally:
        stop(proc)
