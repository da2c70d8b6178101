"""Where a webhook may send data: not to loopback, link-local, private or otherwise
non-public addresses (SSRF), unless ``SHIPTRACK_WEBHOOK_ALLOW_PRIVATE=true``.

Checked when a webhook is made (422) and again before every delivery (a name may
resolve elsewhere later); a literal address and every address a name resolves to must
be public. A name that does not resolve when the webhook is made is accepted (its
deliveries fail and are retried until it resolves to a public address).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


async def refusal(url: str) -> str | None:
    """Why ``url`` may not receive webhooks, or None when it may."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "url: invalid port"
    for ip in await resolve(host, port):
        if not is_public(ip):
            return (f"url: {host} is (or resolves to) {ip}, a loopback, link-local or "
                    "private address; set SHIPTRACK_WEBHOOK_ALLOW_PRIVATE=true to allow it")
    return None
