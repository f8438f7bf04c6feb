"""Logging setup for every command: JSON lines or plain text, with tokens and configured secrets redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

from bot import variables

__all__ = ["ANSWERS", "FORMAT_ENV", "JsonFormatter", "RedactFilter", "log_format", "redact", "setup"]

FORMAT_ENV = "ADVISOR_LOG_FORMAT"
ANSWERS = "advisor.answers"  # the logger of the one record per question handled (bot/service.py)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"

DATABASE_URL = "ADVISOR_DATABASE_URL"  # besides the whole URL (a declared secret), its password alone
# Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-, xoxe- and app-level xapp-) and Discord bot tokens
# (base64 user id . timestamp . HMAC); both shapes are public, see the platforms' token docs
TOKEN_PATTERNS = re.compile(
    r"\bxox[a-z]-[A-Za-z0-9-]{6,}"
    r"|\bxapp-[A-Za-z0-9-]{6,}"
    r"|\b[A-Za-z0-9_-]{20,30}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"
)
# the password in any database URL (postgresql://user:PASSWORD@host) or libpq conninfo (password=PASSWORD)
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(@)|(\bpassword\s*=\s*)('[^']*'|\S+)", re.I)
# attributes every LogRecord has; anything else was passed with `extra=` and goes into the JSON line
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _secrets() -> list[str]:
    """The values of the variables declared secret (bot/variables.py), as set, whether well-formed or not."""
    values = {variables.raw(name) for name in variables.SECRETS}
    found = {v for v in values if len(v) >= 8}  # short values would mask words
    found |= _database_password(variables.raw(DATABASE_URL))
    return sorted(found, key=len, reverse=True)


def _database_password(url: str) -> set[str]:
    """The password of ADVISOR_DATABASE_URL as written and decoded (URL_PASSWORD catches it inside URLs whatever
    its length; alone, like the other secrets, from 8 characters)."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password or ""
    except ValueError:
        return set()
    return {p for p in (password, unquote(password)) if len(p) >= 8}


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with token-shaped strings and the configured secrets replaced by "[redacted]"."""
    for secret in _secrets() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    text = URL_PASSWORD.sub(lambda m: f"{m[1]}{REDACTED}{m[2]}" if m[1] else f"{m[3]}{REDACTED}", text)
    return TOKEN_PATTERNS.sub(REDACTED, text)


def _redact_value(value, secrets: list[str]):
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v, secrets) for v in value]
    return value


class RedactFilter(logging.Filter):
    """Rewrites each record in place so that no handler sees a token: message, arguments, traceback, extras.

    The secrets' values are read when the filter is made (at start, after settings load).
    """

    def __init__(self, secrets: list[str] | None = None):
        super().__init__()
        self.secrets = _secrets() if secrets is None else secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
            record.exc_info = None  # formatters use exc_text; the raw exception could be formatted again
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD:
                setattr(record, key, _redact_value(value, self.secrets))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, any `extra=` fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["traceback"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def log_format() -> str:
    """"json" or "text", from ADVISOR_LOG_FORMAT (default text); anything else is a SettingsError."""
    return variables.value(FORMAT_ENV)


OWN_LOGGERS = ("advisor", "bot", "retrieval")


def setup(verbose: bool = False, stream=None, fmt: str | None = None) -> logging.Handler:
    """Configure the root logger once for a command; returns the handler (tests read what it wrote).

    Text (the default) is for people at a terminal: our warnings and all errors, everything from INFO with -v. JSON
    (ADVISOR_LOG_FORMAT=json, set by the Docker image and the systemd units) is for log collectors:
    warnings, plus the one record per question handled, plus everything from INFO with -v. The format
    is chosen explicitly rather than guessed from the terminal, so that `advisor ask ... 2>file` and a
    service's log read the same way every time.

    Args:
        verbose: log everything from INFO.
        stream: where to write (default stderr).
        fmt: "json" or "text"; default from ADVISOR_LOG_FORMAT.
    """
    fmt = fmt or log_format()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):  # one setup per process; a second call replaces the first
        if getattr(old, "_advisor", False):
            root.removeHandler(old)
    handler._advisor = True
    root.addHandler(handler)
    if verbose:
        root.setLevel(logging.INFO)
    else:
        # our warnings say what degraded (a generated answer not used, a question turned away, an index not
        # switched); libraries' warnings (a PDF's missing EOF marker) are noise next to the command's own
        # one-sentence message, so a terminal shows theirs only from ERROR
        root.setLevel(logging.WARNING if fmt == "json" else logging.ERROR)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    answers = logging.getLogger(ANSWERS)
    answers.setLevel(logging.INFO if fmt == "json" or verbose else logging.WARNING)
    return handler
