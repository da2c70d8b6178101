"""The README's claims and commands, checked by running them: every documented setting has
a ``Settings`` field and a flag of the same name, and ``shiptrack up`` and the demo command
work as printed: failing fast on a taken port, a broker port that stays put, a SIGKILL
that leaves nothing behind but a PostgreSQL the next start reuses, and trucks that move on
the map within seconds of a restart."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx
import psycopg
import pytest
import typer

from shiptrack.app.cli import app
from shiptrack.app.cli_settings import SECRET_FIELDS
from shiptrack.config import Settings
from shiptrack.embedded import free_port
from tests.helpers import wait_for

README = Path(__file__).resolve().parents[2] / "README.md"
SHIPTRACK = [sys.executable, "-m", "shiptrack"]


def readme() -> str:
    return README.read_text(encoding="utf-8")


def documented_settings() -> list[str]:
    """The ``SHIPTRACK_*`` names of the README's settings table (first column)."""
    section = readme().split("## Settings", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `SHIPTRACK_"):
            names += re.findall(r"`SHIPTRACK_([A-Z0-9_]+)`", line.split("|")[1])
    return names


def readme_command(starts: str) -> list[str]:
    """A command of the README's code blocks, as printed (comment dropped)."""
    for block in re.findall(r"```sh\n(.*?)```", readme(), re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                words = words[1:] if words and words[0].endswith("shiptrack") else words
                if words and " ".join(["shiptrack", *words]).startswith(starts):
                    return words
    raise AssertionError(f"no `{starts}` in the README")


def flags_of(command: str) -> set[str]:
    group: Any = typer.main.get_command(app)
    cmd = group.commands[command]
    return {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}


def sample(name: str) -> Any:
    """A valid value of a setting that differs from its default."""
    info = Settings.model_fields[name]
    kind = typing.get_args(info.annotation) or (info.annotation,)
    if name.endswith("_url") and "database" in name:
        return "postgresql://u@db.example/x"
    if name.endswith("_url") and "mqtt" in name:
        return "mqtt://broker.example:1884"
    if typing.get_origin(info.annotation) is dict:
        return {"dhl": {"connector": "dhl_universal"}}
    if typing.get_origin(info.annotation) is Literal:
        return next(v for v in kind if v != info.default)
    if bool in kind:
        return not info.default
    top = min((m.le for m in info.metadata if getattr(m, "le", None) is not None),
              default=None)
    if int in kind:
        up = (info.default or 0) + 1
        return up if top is None or up <= top else info.default - 1
    if float in kind:
        up = (info.default or 1.0) * 1.5
        return up if top is None or up <= top else info.default / 2
    return f"value-of-{name}"


def test_every_documented_setting_has_a_field_and_a_flag() -> None:
    documented = documented_settings()
    fields = set(Settings.model_fields)
    assert {n.lower() for n in documented} == fields  # the table lists every setting
    for command in ("up", "ingest", "api", "settings"):
        assert {f"--{n.lower().replace('_', '-')}" for n in documented} <= flags_of(command)
    assert {"--database-url", "--data-dir", "--log-level"} <= flags_of("migrate")
    argv, expected = ["settings"], {}
    for name in sorted(fields):
        value = sample(name)
        expected[name] = value
        if isinstance(value, bool):
            argv.append(f"--{'' if value else 'no-'}{name.replace('_', '-')}")
        else:
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            argv += [f"--{name.replace('_', '-')}", text]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    done = subprocess.run([*SHIPTRACK, *argv], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    expected |= {name: "***" for name in SECRET_FIELDS}
    assert shown == expected
    bad = subprocess.run([*SHIPTRACK, "settings", "--at-risk-basis", "never"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    [line] = bad.stderr.strip().splitlines()  # one line, naming the flag and the variable
    assert line.startswith("error: bad setting --at-risk-basis / SHIPTRACK_AT_RISK_BASIS: "
                           "Input should be ") and "'eta_high'" in line


# -- shiptrack up, as a user runs it ---------------------------------------------------------

class Up:
    """``shiptrack up`` in a process of its own, its output collected by a thread."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([*SHIPTRACK, *argv], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def out(self) -> str:
        return "\n".join(self.lines)

    def banner(self, key: str) -> str:
        wait_for(lambda: "shiptrack is up" in self.out or self.proc.poll() is not None,
                 timeout=60)
        match = re.search(rf"^\s+{re.escape(key)}:\s+(\S+)", self.out, re.M)
        assert match, self.out
        return match.group(1)

    def end(self, sig: signal.Signals | None = None) -> int:
        """Send ``sig`` (None: just wait for the exit); the exit status."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"up did not stop after {sig!r}:\n{self.out}") from None
        self.reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code


@contextmanager
def holding_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def ours(data_dir: Path) -> list[int]:
    """Processes whose command line names the data dir (embedded servers)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = (proc / "stat").read_text().rpartition(")")[2].split()[0]
            except OSError:
                continue
            if str(data_dir) in cmdline and state != "Z":
                found.append(int(proc.name))
    return found


def embedded_url(data_dir: Path) -> str:
    """The running embedded PostgreSQL's URL, from its ``postmaster.pid``."""
    pgdata = data_dir / "postgres" / "pgdata"
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres@/postgres?host={lines[4]}&port={lines[3]}"


def last(http: httpx.Client, device: str) -> tuple[datetime, float, float] | None:
    r = http.get(f"/api/v1/devices/{device}")
    position = r.json().get("last_position") if r.status_code == 200 else None
    if not position:
        return None
    return datetime.fromisoformat(position["ts"]), position["lat"], position["lon"]


def ctrl_c_as_in_a_terminal() -> None:
    """In a child before exec: SIGINT as a terminal's shell gives it. A suite started in
    the background (``cmd &`` in a script) inherits SIGINT ignored, and so would the
    child: a program that leaves an ignored Ctrl-C alone (as Python does) then never
    stops on it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    """Closed at teardown, whatever failed: a client left open fails a later test."""
    with ExitStack() as stack:
        yield stack


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_up_and_the_demo_command_as_printed(tmp_path: Path, closing: ExitStack) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {"SHIPTRACK_HTTP_PORT": str(free_port()), "COLUMNS": "250"}
    up_argv = [*readme_command("shiptrack up --simulate"), "--data-dir", str(data)]
    base = f"http://127.0.0.1:{env['SHIPTRACK_HTTP_PORT']}"

    with holding_port() as taken:  # a taken API port: one line, nothing started
        busy = Up([*up_argv, "--http-port", str(taken)], env)
        assert busy.end() == 2
        assert busy.lines == [f"error: cannot listen on 127.0.0.1:{taken} for the API: in use"
                              " (set SHIPTRACK_HTTP_PORT or --http-port)"]
        assert not (data / "postgres").exists()

    early = Up(up_argv, env)  # SIGTERM while it starts: it stops what it had started
    wait_for(lambda: "embedded PostgreSQL: data in" in early.out or early.proc.poll()
             is not None, timeout=60)
    assert early.end(signal.SIGTERM) == 128 + signal.SIGTERM, early.out
    assert "embedded PostgreSQL stopped" in early.out
    assert ours(data) == []

    with holding_port() as mqtt_port:  # SHIPTRACK_EMBEDDED_MQTT_PORT taken: a kept port
        env["SHIPTRACK_EMBEDDED_MQTT_PORT"] = str(mqtt_port)
        first = Up(up_argv, env)
        try:
            mqtt_url = first.banner("MQTT")
            kept = int(mqtt_url.rsplit(":", 1)[1])
            assert kept != mqtt_port
            assert (data / "broker" / "port").read_text().split() == [str(mqtt_port), str(kept)]
            with httpx.Client(base_url=base, timeout=10) as anon:
                wait_for(lambda: anon.get("/readyz").status_code == 200, timeout=30)
            token = (data / "admin-token").read_text().strip()
            http = closing.enter_context(httpx.Client(
                base_url=base, timeout=10, headers={"Authorization": f"Bearer {token}"}))
            demo = subprocess.Popen(  # the README's demo command, in another "terminal"
                [*SHIPTRACK, *readme_command("shiptrack simulate --scenario demo")],
                env=env | {"SHIPTRACK_DATA_DIR": str(data)}, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                preexec_fn=ctrl_c_as_in_a_terminal)
            try:
                wait_for(lambda: http.get("/api/v1/shipments").json()["items"], timeout=30)
                wait_for(lambda: last(http, "demo-0001"), timeout=30)
            finally:
                demo.send_signal(signal.SIGINT)
                try:
                    out, _ = demo.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    demo.kill()
                    out, _ = demo.communicate(timeout=10)
                    raise AssertionError(f"the demo did not stop on SIGINT:\n{out}") from None
            assert demo.returncode in (0, 130), out
            wait_for(lambda: last(http, "sim-0001"))
        finally:
            assert first.end(signal.SIGKILL) == -signal.SIGKILL
        broker_pid = int((data / "broker" / "broker.pid").read_text())
        wait_for(lambda: broker_pid not in ours(data), timeout=15)  # died with its parent
        assert ours(data)  # PostgreSQL runs on (pg_ctl daemonised it): the next start reuses it
        # the fleet was 30 km further on when `up` was killed (a long run, shortened here)
        with psycopg.connect(embedded_url(data), autocommit=True) as conn:
            before = conn.execute(
                "UPDATE devices SET lat = lat + 0.27, last_ts = now() WHERE device_id LIKE"
                " 'sim-%' RETURNING last_ts, lat, lon").fetchall()[0]

        second = Up(up_argv, env)  # the same command again: same broker port, same data
        try:
            assert second.banner("MQTT") == mqtt_url
            # the restarted fleet resumes from its start: its trucks move within seconds
            moved = wait_for(lambda: (now := last(http, "sim-0001")) and now[0] > before[0]
                             and now[1:] != before[1:] and now, timeout=20)
            assert moved
            again = wait_for(lambda: (now := last(http, "sim-0001")) and now[0] > moved[0]
                             and now)
            assert again[1:] != moved[1:]
        finally:
            code = second.end(signal.SIGTERM)
    assert code in (0, 143), second.out
    assert "embedded PostgreSQL stopped" in second.out
    assert "embedded MQTT broker stopped" in second.out
    wait_for(lambda: ours(data) == [], timeout=15)
