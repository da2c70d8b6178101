"""Tokens never reach the logs: uvicorn's access lines (and its WebSocket lines) show
the values of ``token=`` and ``ticket=`` query parameters as ``[redacted]``."""

from __future__ import annotations

import logging
import re

SECRET_QUERY = re.compile(r"(?i)([?&](?:token|ticket|access_token)=)[^&\s\"]*")
LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact(text: str) -> str:
    return SECRET_QUERY.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install() -> None:
    """Idempotent: one filter per logger, whoever configures the handlers later."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
