"""A real SMTP server for the tests (aiosmtpd in a thread): it keeps every message it
accepts, parsed, and refuses the recipients it is told to (permanently with 5xx, or the
first few times with 4xx)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from shiptrack.embedded import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}  # address -> SMTP reply, every time
        self.defer: dict[str, int] = {}  # address -> how many more 451s
        self.lock = threading.Lock()

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        with self.lock:
            if address in self.refuse:
                return self.refuse[address]
            if self.defer.get(address, 0) > 0:
                self.defer[address] -= 1
                return "451 4.2.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        with self.lock:
            self.messages.append(msg)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def subjects(self, address: str) -> list[str]:
        return [str(m["Subject"]) for m in self.to(address)]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def password_check(user: str, password: str) -> Any:
    """An aiosmtpd authenticator accepting one login (AUTH over plain TCP: tests only)."""

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login == user.encode()
              and auth_data.password == password.encode())
        return AuthResult(success=ok, handled=False)

    return authenticator


@contextmanager
def smtp_server(inbox: Inbox, port: int | None = None,
                login: tuple[str, str] | None = None) -> Iterator[str]:
    """Serve ``inbox`` on a loopback port (requiring ``login`` when given); yields its
    ``smtp://`` URL."""
    auth: dict[str, Any] = {}
    if login:
        auth = {"authenticator": password_check(*login),
                "auth_require_tls": False}
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(), **auth)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()
