"""The body limit: what an oversized request without a token costs the API, with the
input guard (api/input_guard.py) and, for comparison, with it taken out of the same app.

    SHIPTRACK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    SHIPTRACK_MQTT_URL=mqtt://127.0.0.1:1883 python -m bench.body_limit [--mb 40 --requests 4]

For each side a fresh server process (uvicorn, ``create_app``) on loopback; the client
sends ``--requests`` bodies of ``--mb`` MB of JSON to ``POST /api/v1/geofences`` with no
token, once declared by ``Content-Length`` and once chunked, and waits for the answer.
Reported: the status, the seconds until the answer, and the server's peak RSS (VmHWM)
before and after. Nothing is stored (no token: nothing gets past auth); a temporary
database is made and dropped.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time


def serve(port: int, guard: bool) -> None:
    import uvicorn

    from api.app import create_app
    from api.input_guard import InputGuard
    from shiptrack.config import Settings

    app = create_app(Settings(), "bench-admin-token")
    if not guard:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not InputGuard]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def request(port: int, size: int, chunked: bool) -> tuple[int, float]:
    """Send one body from a thread while waiting for the answer; (status, seconds until
    the status line arrived). The server may answer before the body is sent."""
    head = (b"POST /api/v1/geofences HTTP/1.1\r\nHost: bench\r\n"
            b"Content-Type: application/json\r\n")
    head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else \
        f"Content-Length: {size}\r\n\r\n".encode()
    block = b"[" + b"1," * (256 * 1024)  # 512 kB of a never-finished array

    def send_body(sock: socket.socket) -> None:
        sent = 0
        try:
            while sent < size:
                piece = block[: size - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed: the rest is not wanted

    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
        sock.sendall(head)
        sender = threading.Thread(target=send_body, args=(sock,), daemon=True)
        sender.start()
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        elapsed = time.perf_counter() - started
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    sender.join(30)
    return (int(answer.split()[1]) if answer else 0), elapsed


def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def side(guard: bool, mb: int, count: int) -> None:
    from shiptrack.embedded import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.body_limit", "--serve", str(port),
                             "--guard", "on" if guard else "off"], env=os.environ.copy())
    try:
        wait_port(port)
        before = hwm_mb(proc.pid)
        for chunked in (False, True):
            results = [request(port, mb * 1024 * 1024, chunked) for _ in range(count)]
            statuses = sorted({s for s, _ in results})
            seconds = sorted(t for _, t in results)[len(results) // 2]
            print(f"| {'on' if guard else 'off'} | {'chunked' if chunked else 'declared'} | "
                  f"{count} x {mb} MB | {statuses} | {seconds:.3f} | {before:.0f} | "
                  f"{hwm_mb(proc.pid):.0f} |", flush=True)
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=40)
    parser.add_argument("--requests", type=int, default=4)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--guard", default="on", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.guard == "on")
        return
    import uuid

    import psycopg
    from psycopg.conninfo import make_conninfo

    from shiptrack.db.migrate import migrate

    admin = os.environ["SHIPTRACK_DATABASE_URL"]
    name = f"bench_body_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["SHIPTRACK_DATABASE_URL"] = make_conninfo(admin, dbname=name)
    try:
        migrate(os.environ["SHIPTRACK_DATABASE_URL"])
        print("| guard | body | requests | statuses | median s to answer | server peak RSS "
              "before, MB | after, MB |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for guard in (True, False):
            side(guard, args.mb, args.requests)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
