"""The absolute links a notification carries: the tracking page, the one-click
unsubscribe (RFC 8058) and the confirmation of a customer's sign-up. The base is
``SHIPTRACK_PUBLIC_URL``, else the API's own address (fine on one machine)."""

from __future__ import annotations

from shiptrack.config import Settings

UNSUBSCRIBE_PATH = "/n/unsubscribe/"
CONFIRM_PATH = "/n/confirm/"


def base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://{settings.http_host}:{settings.http_port}"


def links_for(settings: Settings, tracking_token: str | None, unsubscribe_token: str,
              confirm_token: str | None = None) -> dict[str, str]:
    """``tracking_token`` None: a token that cannot be made again (issued before tracking
    tokens were made from the shipment id, docs/DESIGN.md): the link is the site's."""
    base = base_url(settings)
    links = {"tracking_url": f"{base}/t/{tracking_token}" if tracking_token else f"{base}/",
             "unsubscribe_url": f"{base}{UNSUBSCRIBE_PATH}{unsubscribe_token}"}
    if confirm_token:
        links["confirm_url"] = f"{base}{CONFIRM_PATH}{confirm_token}"
    return links
