"""A minimal MQTT 3.1.1 publisher on a plain socket, for load generation only.

paho spends ~70 us of Python per message; a load generator that wants tens of thousands
of messages a second from two cores cannot afford that. This client only connects,
publishes (QoS 0 or 1, many PUBLISH packets per ``sendall``), counts PUBACKs on a reader
thread and pings. No subscriptions, no retransmission: a lost connection ends the run
with an error, which for a load test is the honest outcome.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterable

from shiptrack.errors import BrokerError
from shiptrack.mqtturl import MqttTarget

CONNECT, CONNACK, PUBLISH, PUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 12, 13, 14


class RawMqttError(BrokerError):
    """The broker refused or dropped the load generator's connection."""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str | None, password: str | None,
                   keepalive: int) -> bytes:
    flags = 0x02  # clean session
    payload = _utf8(client_id)
    if username is not None:
        flags |= 0x80
        payload += _utf8(username)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
    body = _utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + payload
    return bytes([CONNECT << 4]) + _varint(len(body)) + body


def publish_packet(topic: bytes, payload: bytes, qos: int, packet_id: int) -> bytes:
    head = struct.pack("!H", len(topic)) + topic
    if qos:
        head += struct.pack("!H", packet_id)
    return bytes([(PUBLISH << 4) | (qos << 1)]) + _varint(len(head) + len(payload)) + head + payload


class RawPublisher:
    def __init__(self, target: MqttTarget, client_id: str, keepalive: int = 60) -> None:
        self.target = target
        self.keepalive = keepalive
        self.acked = 0
        self.sent = 0
        self.error: str | None = None
        self._next_id = 0
        self._last_send = time.monotonic()
        sock = socket.create_connection((target.host, target.port), timeout=10.0)
        if target.tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        sock.sendall(connect_packet(client_id, target.username, target.password, keepalive))
        ack = self._read_exact(4)
        if ack[0] >> 4 != CONNACK or ack[3] != 0:
            sock.close()
            raise RawMqttError(f"broker {target.url} refused the connection (code {ack[3]})")
        sock.settimeout(None)
        self._reader = threading.Thread(target=self._read_loop, name="rawmqtt-reader",
                                        daemon=True)
        self._reader.start()

    def _read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise RawMqttError(f"broker {self.target.url} closed the connection")
            data += chunk
        return data

    def _read_loop(self) -> None:
        buf = b""
        try:
            while True:
                chunk = self._sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                buf = self._consume(buf)
        except OSError as exc:
            self.error = str(exc)
            return
        self.error = self.error or "connection closed by the broker"

    def _consume(self, buf: bytes) -> bytes:
        i, n = 0, len(buf)
        while n - i >= 2:
            kind = buf[i] >> 4
            length, shift, j = 0, 0, i + 1
            while j < n:
                length |= (buf[j] & 0x7F) << shift
                shift += 7
                j += 1
                if not buf[j - 1] & 0x80:
                    break
            else:
                break
            if n - j < length:
                break
            if kind == PUBACK:
                self.acked += 1
            i = j + length
        return buf[i:]

    def publish_many(self, messages: Iterable[tuple[bytes, bytes]], qos: int) -> int:
        """Send the messages in one write; the number sent."""
        parts = []
        for topic, payload in messages:
            if qos:
                self._next_id = self._next_id % 65535 + 1
            parts.append(publish_packet(topic, payload, qos, self._next_id))
        if parts:
            self._send(b"".join(parts))
            self.sent += len(parts)
        return len(parts)

    def _send(self, data: bytes) -> None:
        if self.error is not None:
            raise RawMqttError(f"connection to {self.target.url} lost: {self.error}")
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise RawMqttError(f"connection to {self.target.url} lost: {exc}") from exc
        self._last_send = time.monotonic()

    def ping_if_idle(self) -> None:
        if time.monotonic() - self._last_send > self.keepalive / 2:
            self._send(bytes([PINGREQ << 4, 0]))

    def close(self) -> None:
        try:
            self._sock.sendall(bytes([DISCONNECT << 4, 0]))
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._reader.join(2.0)
