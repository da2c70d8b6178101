"""The three ways a notification leaves: e-mail over SMTP (aiosmtplib), SMS through the
Twilio Messages API (at a configurable base URL, so any compatible provider or a test
server works), and a Standard Webhooks POST (signed as ``api/webhooks.py`` signs).

Each send answers a ``Result``: ``sent``; ``retry`` (the provider is down or busy, or the
recipient refused for now: a 4xx SMTP reply, HTTP 429/5xx); or ``permanent`` (the
recipient was refused for good: a 5xx SMTP reply to RCPT/DATA, an HTTP 4xx from the SMS
provider about the number, HTTP 410 from a webhook). ``recipient`` says whether the
answer was about the recipient (recorded on the subscription) or about the provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr
from typing import Literal

import aiosmtplib
import httpx

from api.webhooks import headers as webhook_headers
from shiptrack.config import Settings
from shiptrack.notify.mail import UNFOLDED, SmtpTarget, parse_smtp_url

Outcome = Literal["sent", "retry", "permanent"]
WIRE = UNFOLDED.clone(linesep="\r\n")


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    error: str | None = None
    recipient: bool = False  # the answer was about the recipient, not the provider

    @classmethod
    def ok(cls) -> Result:
        return cls("sent")


def smtp_refusal(code: int, text: str) -> Result:
    """An SMTP reply to RCPT TO or DATA: 5xx is permanent, anything else temporary."""
    outcome: Outcome = "permanent" if 500 <= code < 600 else "retry"
    return Result(outcome, f"SMTP {code} {text}".strip()[:500], recipient=True)


class SmtpSender:
    """One connection per round of sends (opened at the first mail, closed at the end)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.target: SmtpTarget | None = (
            parse_smtp_url(settings.smtp_url) if settings.smtp_url else None)
        self.client: aiosmtplib.SMTP | None = None

    async def _connected(self, target: SmtpTarget) -> aiosmtplib.SMTP:
        if self.client is not None and self.client.is_connected:
            return self.client
        client = aiosmtplib.SMTP(hostname=target.host, port=target.port,
                                 use_tls=target.use_tls, start_tls=target.start_tls,
                                 timeout=self.settings.notify_timeout_seconds)
        await client.connect()
        if target.username:
            await client.login(target.username, target.password or "")
        self.client = client
        return client

    async def send(self, message: Message) -> Result:
        if self.target is None:
            return Result("retry", "SHIPTRACK_SMTP_URL is not set")
        try:
            client = await self._connected(self.target)
            # sent as built: aiosmtplib's own flattening would fold the headers again
            await client.sendmail(parseaddr(str(message["From"]))[1], [str(message["To"])],
                                  message.as_bytes(policy=WIRE))
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            return smtp_refusal(first.code, first.message)
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
            return smtp_refusal(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            return Result("retry", f"{type(exc).__name__}: {exc}"[:500])
        return Result.ok()

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


async def send_sms(http: httpx.AsyncClient, settings: Settings, to: str, body: str) -> Result:
    """Twilio's ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form: To, From, Body;
    HTTP Basic with the account SID and auth token)."""
    sid, token, sender = settings.sms_account_sid, settings.sms_auth_token, settings.sms_from
    if not (sid and token and sender):
        return Result("retry", "SMS is not configured (SHIPTRACK_SMS_ACCOUNT_SID, "
                               "SHIPTRACK_SMS_AUTH_TOKEN, SHIPTRACK_SMS_FROM)")
    url = f"{settings.sms_url.rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
    try:
        answer = await http.post(url, data={"To": to, "From": sender, "Body": body},
                                 auth=(sid, token))
    except httpx.HTTPError as exc:
        return Result("retry", f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= answer.status_code < 300:
        return Result.ok()
    error = f"HTTP {answer.status_code}: {_provider_message(answer)}"[:500]
    if answer.status_code in (401, 403, 429) or answer.status_code >= 500:
        return Result("retry", error)  # our account or the provider, not the number
    return Result("permanent", error, recipient=True)


def _provider_message(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    if isinstance(body, dict):
        return f"{body.get('code', '')} {body.get('message', '')}".strip()
    return str(body)[:200]


async def send_webhook(http: httpx.AsyncClient, url: str, secret: str, msg_id: str,
                       payload: dict[str, object]) -> Result:
    body = json.dumps(payload, separators=(",", ":"), default=str)
    try:
        answer = await http.post(url, content=body.encode(),
                                 headers=webhook_headers(secret, msg_id, body))
    except httpx.HTTPError as exc:
        return Result("retry", f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= answer.status_code < 300:
        return Result.ok()
    if answer.status_code == 410:  # Gone: the receiver asks to stop
        return Result("permanent", "HTTP 410", recipient=True)
    return Result("retry", f"HTTP {answer.status_code}", recipient=answer.status_code < 500)
