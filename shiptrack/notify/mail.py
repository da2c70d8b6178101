"""E-mail: the SMTP URL and the message itself (pure).

``SHIPTRACK_SMTP_URL``: ``smtp://[user:pass@]host[:port]`` (plain, port 25 by default;
``?starttls=true`` upgrades with STARTTLS, port 587), ``smtps://`` (TLS from the start,
port 465). User and password are percent-decoded.

A message is ``multipart/alternative`` (text, then HTML) with ``Content-Language``, a
``Message-ID`` derived from the outbox row (a resend after a crash has the same id, so a
mailbox can drop the copy), and RFC 8058 one-click unsubscribe headers when it has an
unsubscribe URL (``List-Unsubscribe: <https://...>``, ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, formatdate, parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from shiptrack.errors import ConfigError
from shiptrack.notify.render import Email

TRUE = ("1", "true", "yes", "on")
UTF8 = Charset("utf-8")
UTF8.header_encoding = QP
UTF8.body_encoding = QP  # readable in the raw message, unlike base64
UNFOLDED = compat32.clone(max_line_length=998)  # List-Unsubscribe stays on one line


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False  # smtps://: TLS from the first byte
    start_tls: bool = False  # smtp://...?starttls=true


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(f"SHIPTRACK_SMTP_URL: expected smtp://[user:pass@]host[:port] or "
                          f"smtps://..., got {parts.scheme or '?'}://...")
    query = {k.lower(): v[-1].lower() for k, v in parse_qs(parts.query).items()}
    start_tls = query.get("starttls", "false") in TRUE
    tls = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if tls else 587 if start_tls else 25)
    except ValueError as exc:
        raise ConfigError(f"SHIPTRACK_SMTP_URL: bad port ({exc})") from exc
    return SmtpTarget(host=parts.hostname, port=port,
                      username=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None,
                      use_tls=tls, start_tls=start_tls and not tls)


def message_id(key: str, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "shiptrack.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def build_message(email: Email, *, sender: str, to: str, language: str, key: str,
                  unsubscribe_url: str | None) -> Message:
    """The MIME message (the ``email.mime`` classes: 25x faster to build than
    ``EmailMessage`` with the default policy, which dominated a send)."""
    msg = MIMEMultipart("alternative", policy=UNFOLDED)
    name, addr = parseaddr(sender)
    msg["From"] = formataddr((name, addr), charset="utf-8") if name else addr
    msg["To"] = to
    msg["Subject"] = Header(email.subject, UTF8).encode()
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id(key, sender)
    msg["Content-Language"] = language
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    # the stdlib takes a Charset here (its documentation says so; typeshed says str)
    msg.attach(MIMEText(email.text, "plain", UTF8, policy=UNFOLDED))  # type: ignore[arg-type]
    msg.attach(MIMEText(email.html, "html", UTF8, policy=UNFOLDED))  # type: ignore[arg-type]
    return msg
