"""Messages from templates (Jinja2), in the recipient's language (gettext catalogues,
``catalogs.py``) with dates and times formatted by Babel for that locale, in the
recipient's time zone (pure: no I/O but reading templates).

Templates are looked up first in ``SHIPTRACK_NOTIFY_TEMPLATES_DIR`` (when set), then in
the package (``shiptrack/notify/templates``): a deployment overrides any one of them by
putting a file of the same name there. Names: ``email/<what>.subject.txt``,
``email/<what>.txt``, ``email/<what>.html``, ``sms/update.txt``, ``pages/<page>.html``,
where ``<what>`` is ``update`` or ``confirm``. HTML templates are autoescaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_interval, format_skeleton, format_time, get_timezone_name
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined

from shiptrack.notify.catalogs import translations

TEMPLATES = ("email/update", "email/confirm")
EN_DASH = "\u2013"
PAGES = ("pages/confirm.html", "pages/unsubscribe.html", "pages/gone.html")


@dataclass(frozen=True, slots=True)
class Email:
    subject: str
    text: str
    html: str


@cache
def environment(language: str, override_dir: str | None) -> Environment:
    """One Jinja2 environment per (base language, override directory)."""
    loaders: list[Any] = [PackageLoader("shiptrack.notify", "templates")]
    if override_dir:
        loaders.insert(0, FileSystemLoader(override_dir))
    env = Environment(loader=ChoiceLoader(loaders), extensions=["jinja2.ext.i18n"],
                      autoescape=lambda name: bool(name and name.endswith(".html")),
                      undefined=StrictUndefined, keep_trailing_newline=False)
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def locale_of(language: str) -> Locale:
    return Locale.parse(language.replace("-", "_"))


class Formatter:
    """Dates and times for one locale and zone."""

    def __init__(self, language: str, zone: str) -> None:
        self.locale = locale_of(language)
        self.tz = ZoneInfo(zone)

    def _time_skeleton(self) -> str:
        return "Hm" if "H" in self.locale.time_formats["short"].pattern else "hm"

    def moment(self, ts: datetime) -> str:
        day = format_skeleton("MMMMEd", ts, tzinfo=self.tz, locale=self.locale)
        clock = format_time(ts, "short", tzinfo=self.tz, locale=self.locale)
        return str(self.locale.datetime_formats["medium"]).format(clock, day)

    def window(self, low: datetime, high: datetime) -> str:
        """``Tue, December 1, 14:00 - 16:30`` (the locale's interval), or two moments
        joined by an en dash when the days differ."""
        if low.astimezone(self.tz).date() != high.astimezone(self.tz).date():
            return f"{self.moment(low)} {EN_DASH} {self.moment(high)}"
        day = format_skeleton("MMMMEd", low, tzinfo=self.tz, locale=self.locale)
        span = format_interval(low, high, self._time_skeleton(), tzinfo=self.tz,
                               locale=self.locale)
        return str(self.locale.datetime_formats["medium"]).format(span, day)

    def zone_name(self, at: datetime) -> str:
        return str(get_timezone_name(self.tz, locale=self.locale))


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def variables(context: dict[str, Any], language: str, zone: str,
              links: dict[str, str]) -> dict[str, Any]:
    """What every template gets: the frozen context in words of this locale and zone."""
    fmt = Formatter(language, zone)
    ts = _when(context.get("ts")) or datetime.now(fmt.tz)
    low, high = _when(context.get("eta_low")), _when(context.get("eta_high"))
    promised = _when(context.get("promised_by"))
    return {
        "lang": language, "kind": context.get("kind", ""), "code": context.get("code"),
        "reference": context.get("reference", ""), "when": fmt.moment(ts),
        "eta_window": fmt.window(low, high) if low and high else None,
        "promised": fmt.moment(promised) if promised else None,
        "zone_name": fmt.zone_name(ts),
        "tracking_url": links.get("tracking_url", ""),
        "unsubscribe_url": links.get("unsubscribe_url", ""),
        "confirm_url": links.get("confirm_url", ""),
    }


def render_email(what: str, context: dict[str, Any], language: str, zone: str,
                 links: dict[str, str], override_dir: str | None = None) -> Email:
    env = environment(locale_of(language).language, override_dir)
    values = variables(context, language, zone, links)
    subject = env.get_template(f"email/{what}.subject.txt").render(values)
    return Email(subject=" ".join(subject.split()),
                 text=env.get_template(f"email/{what}.txt").render(values).strip() + "\n",
                 html=env.get_template(f"email/{what}.html").render(values))


def render_sms(context: dict[str, Any], language: str, zone: str, links: dict[str, str],
               override_dir: str | None = None) -> str:
    env = environment(locale_of(language).language, override_dir)
    text = env.get_template("sms/update.txt").render(variables(context, language, zone, links))
    return " ".join(text.split())


def render_headline(context: dict[str, Any], language: str,
                    override_dir: str | None = None) -> str:
    env = environment(locale_of(language).language, override_dir)
    words = env.get_template("_words.txt").module
    return " ".join(str(words.headline(context.get("kind", ""),  # type: ignore[attr-defined]
                                       context.get("reference", ""))).split())


def render_page(page: str, language: str, values: dict[str, Any],
                override_dir: str | None = None) -> str:
    env = environment(locale_of(language).language, override_dir)
    return env.get_template(f"pages/{page}.html").render({"lang": language, **values})
