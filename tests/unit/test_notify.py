"""The pure parts of notifications: every template in every language, catalogues
complete, Babel dates in the recipient's zone, quiet hours (midnight, daylight saving),
occurrence rules, subscription checks, the SMTP URL and the e-mail's headers."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir

from shiptrack.errors import ConfigError
from shiptrack.notify import (
    DEFAULT_NOTIFY,
    KINDS,
    LANGUAGES,
    SubscriptionError,
    eta_news,
    occurrence,
    parse_subscription,
    release_at,
)
from shiptrack.notify.catalogs import catalog
from shiptrack.notify.mail import build_message, parse_smtp_url
from shiptrack.notify.occurrences import CUSTOMER_FACING, INTERNAL
from shiptrack.notify.render import (
    PAGES,
    Formatter,
    render_email,
    render_headline,
    render_page,
    render_sms,
)
from shiptrack.shipments import EXCEPTION_CODES

TEMPLATES = Path(__file__).parents[2] / "shiptrack" / "notify" / "templates"
LINKS = {"tracking_url": "https://t.example/t/TOKEN", "unsubscribe_url": "https://t.example/n/"
         "unsubscribe/U", "confirm_url": "https://t.example/n/confirm/C"}
CONTEXT = {"reference": "PO-<42>", "ts": "2026-12-01T13:05:00Z",
           "eta_low": "2026-12-01T15:00:00Z", "eta_high": "2026-12-01T16:30:00Z",
           "promised_by": "2026-12-01T14:00:00Z"}


def msgids() -> set[str]:
    return {str(m[2]) for m in extract_from_dir(
        str(TEMPLATES), method_map=[("**.txt", "jinja2"), ("**.html", "jinja2")],
        options_map={"**": {"extensions": "jinja2.ext.i18n"}})}


@pytest.mark.parametrize("language", [x for x in LANGUAGES if x != "en"])
def test_every_catalogue_translates_every_message(language: str) -> None:
    parsed = catalog(language)
    assert parsed is not None
    translated = {m.id for m in parsed if m.id and m.string and not m.fuzzy}
    assert msgids() - translated == set()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_renders_in_every_language(language: str) -> None:
    english: dict[str, str] = {}
    for kind in KINDS:
        for code in (None, *EXCEPTION_CODES):
            ctx = {**CONTEXT, "kind": kind, "code": code}
            mail = render_email("update", ctx, language, "Europe/Berlin", LINKS)
            assert mail.subject and "\n" not in mail.subject and "PO-<42>" in mail.subject
            assert "https://t.example/t/TOKEN" in mail.text and "/n/unsubscribe/U" in mail.text
            assert "PO-&lt;42&gt;" in mail.html and "PO-<42>" not in mail.html  # escaped
            assert f'<html lang="{language}">' in mail.html
            sms = render_sms(ctx, language, "Europe/Berlin", LINKS)
            assert sms.endswith("https://t.example/t/TOKEN") and len(sms) < 320
            assert render_headline(ctx, language) in mail.subject
        english[kind] = render_headline({**CONTEXT, "kind": kind}, "en")
    assert len(set(english.values())) == len(KINDS)  # a sentence of its own for each kind
    confirm = render_email("confirm", {**CONTEXT, "kind": "confirm"}, language, "UTC", LINKS)
    assert "https://t.example/n/confirm/C" in confirm.text + confirm.html
    for page in PAGES:
        for done in (False, True):
            html = render_page(page.removeprefix("pages/").removesuffix(".html"), language,
                               {"reference": "R-1", "address": "a@example.com", "done": done})
            assert html.startswith("<!DOCTYPE html>")


def test_translated_words_and_dates_in_the_recipients_zone() -> None:
    ctx = {**CONTEXT, "kind": "out_for_delivery"}
    de = render_email("update", ctx, "de", "Europe/Berlin", LINKS)
    assert de.subject == "Ihre Sendung PO-<42> ist in der Zustellung"
    assert "Zeitpunkt: Di., 1. Dezember, 14:05" in de.text
    assert "Voraussichtliche Zustellung: Di., 1. Dezember, 16:00\u201317:30 Uhr" in de.text
    en = render_email("update", ctx, "en", "America/New_York", LINKS)
    assert "When: Tue, December 1, 8:05\u202fAM" in en.text  # CLDR's narrow spaces
    assert "Expected delivery: Tue, December 1, 10:00\u2009\u2013\u200911:30\u202fAM" in en.text
    assert "Time zone: Eastern Time" in en.text
    es = render_email("update", {**ctx, "kind": "delivered"}, "es", "Europe/Madrid", LINKS)
    assert es.subject == "Su envío PO-<42> ha sido entregado"
    assert "Entrega prevista" not in es.text  # no ETA once delivered
    fr = Formatter("fr", "Europe/Paris")
    night = fr.window(datetime(2026, 12, 1, 22, tzinfo=UTC), datetime(2026, 12, 2, 1, tzinfo=UTC))
    assert night == "mar. 1 décembre, 23:00 \u2013 mer. 2 décembre, 02:00"


def test_templates_are_overridden_from_a_directory(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "update.subject.txt").write_text("[{{ reference }}] {{ kind }}")
    mail = render_email("update", {**CONTEXT, "kind": "delivered"}, "de", "UTC", LINKS,
                        str(tmp_path))
    assert mail.subject == "[PO-<42>] delivered"
    assert "zugestellt" in mail.text  # the others are still the package's


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0,
        second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_quiet_hours() -> None:
    night, morning = time(22), time(7)
    # Berlin in winter is UTC+1: 22:30 UTC is 23:30 there, released at 07:00 (06:00 UTC)
    assert release_at(utc(2026, 12, 1, 22, 30), "Europe/Berlin", night, morning) == utc(
        2026, 12, 2, 6)
    assert release_at(utc(2026, 12, 2, 3), "Europe/Berlin", night, morning) == utc(2026, 12, 2, 6)
    awake = utc(2026, 12, 2, 6)
    assert release_at(awake, "Europe/Berlin", night, morning) == awake  # end excluded
    assert release_at(utc(2026, 12, 1, 20, 59), "Europe/Berlin", night, morning) == utc(
        2026, 12, 1, 20, 59)
    # a window within one day (a lunch break)
    assert release_at(utc(2026, 12, 1, 12, 15), "UTC", time(12), time(13)) == utc(2026, 12, 1, 13)
    # the spring-forward night (Berlin, 29 March 2026: 02:00 -> 03:00): 02:30 never
    # happens, the window ends at 03:00 CEST = 01:00 UTC
    assert release_at(utc(2026, 3, 28, 23), "Europe/Berlin", time(22), time(2, 30)) == utc(
        2026, 3, 29, 1)
    assert release_at(utc(2026, 12, 1, 3), "UTC", None, None) == utc(2026, 12, 1, 3)


def test_occurrences() -> None:
    assert set(EXCEPTION_CODES) == CUSTOMER_FACING | INTERNAL  # every SPEC code decided
    assert {"delayed", "sensor_excursion", "offline", "route_deviation",
                        "long_stop"} == INTERNAL
    assert occurrence("shipment.milestone", {"kind": "out_for_delivery"}).kind == (  # type: ignore[union-attr]
        "out_for_delivery")
    assert occurrence("shipment.milestone", {"kind": "hub"}) is None
    assert occurrence("shipment.at_risk", {}).kind == "delayed"  # type: ignore[union-attr]
    assert occurrence("shipment.at_risk_cleared", {}) is None
    for code in ("sensor_excursion", "offline", "route_deviation", "long_stop", "delayed"):
        assert occurrence("shipment.exception", {"code": code}) is None, code
    found = occurrence("shipment.exception", {"code": "customs_hold"})
    assert found is not None and (found.kind, found.code) == ("exception", "customs_hold")
    manual = occurrence("shipment.exception", {"kind": "manual", "reason": "x"})
    assert manual is not None and manual.code == "other"
    for internal in ("sensor.excursion", "device.offline", "device.long_stop",
                     "route.deviation", "geofence.enter"):
        assert occurrence(internal, {"kind": "picked_up"}) is None
    base = utc(2026, 12, 1, 15)
    assert not eta_news(None, base, timedelta(hours=1))
    assert not eta_news(base, base + timedelta(minutes=59), timedelta(hours=1))
    assert eta_news(base, base - timedelta(minutes=60), timedelta(hours=1))


def test_subscription_checks_name_the_field() -> None:
    spec = parse_subscription({"address": " Anna@Example.COM ", "language": "de_AT",
                               "timezone": "Europe/Vienna"})
    assert (spec.address, spec.language, spec.notify) == ("Anna@example.com", "de-AT",
                                                          DEFAULT_NOTIFY)
    for bad, field in (({"address": "anna@"}, "address"),
                       ({"address": "a@example.com", "language": "xx-YY"}, "language"),
                       ({"address": "a@example.com", "language": "zh"}, "language"),
                       ({"address": "a@example.com", "timezone": "Berlin"}, "timezone"),
                       ({"address": "a@example.com", "timezone": "../etc/passwd"}, "timezone"),
                       ({"address": "a@example.com", "quiet_hours": {"start": "22:00"}},
                        "quiet_hours"),
                       ({"address": "a@example.com", "notify": []}, "notify"),
                       ({"channel": "sms", "address": "+1 555"}, "address"),
                       ({"channel": "webhook", "address": "ftp://x.example"}, "address"),
                       ({"address": "a@example.com", "colour": "red"}, "colour")):
        with pytest.raises(SubscriptionError, match=f"^{field}:"):
            parse_subscription(bad)


def test_smtp_url_and_message_headers() -> None:
    t = parse_smtp_url("smtp://user%40x:p%3Ass@mail.example:2525?starttls=true")
    assert (t.host, t.port, t.username, t.password, t.use_tls, t.start_tls) == (
        "mail.example", 2525, "user@x", "p:ss", False, True)
    assert parse_smtp_url("smtps://mail.example").port == 465
    assert parse_smtp_url("smtp://mail.example").port == 25
    with pytest.raises(ConfigError):
        parse_smtp_url("http://mail.example")
    mail = render_email("update", {**CONTEXT, "kind": "delivered"}, "fr", "UTC", LINKS)
    msg = build_message(mail, sender="Shop <shop@example.com>", to="a@example.com",
                        language="fr", key="sub_1/evt_1", unsubscribe_url=LINKS["unsubscribe_url"])
    again = build_message(mail, sender="Shop <shop@example.com>", to="a@example.com",
                          language="fr", key="sub_1/evt_1", unsubscribe_url=None)
    assert msg["Message-ID"] == again["Message-ID"] and msg["Message-ID"].endswith("@example.com>")
    assert msg["Content-Language"] == "fr" and msg.get_content_type() == "multipart/alternative"
    assert msg["List-Unsubscribe"] == f"<{LINKS['unsubscribe_url']}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert again["List-Unsubscribe"] is None
