"""Translations: the Babel catalogues (``locales/<lang>/LC_MESSAGES/messages.po``) shipped
as source and compiled in memory at first use, so an editable install and a wheel work
the same and no built ``.mo`` file is kept in the repository."""

from __future__ import annotations

import gettext
import io
from functools import cache
from importlib import resources

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "messages"
SOURCE_LANGUAGE = "en"  # the msgids


def catalog(language: str) -> Catalog | None:
    """The parsed catalogue of a base language (None: the source language, or none)."""
    entry = resources.files("shiptrack.notify") / "locales" / language / "LC_MESSAGES" / (
        DOMAIN + ".po")
    if language == SOURCE_LANGUAGE or not entry.is_file():
        return None
    with entry.open("rb") as fh:
        return read_po(fh, locale=language)


@cache
def translations(language: str) -> gettext.NullTranslations:
    """gettext translations for a base language; the msgids themselves for English."""
    parsed = catalog(language)
    if parsed is None:
        return gettext.NullTranslations()
    buf = io.BytesIO()
    write_mo(buf, parsed)
    buf.seek(0)
    return gettext.GNUTranslations(buf)
