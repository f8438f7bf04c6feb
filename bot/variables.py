"""Every environment variable advisor reads, declared once: name, parser, default, secret or not, one-line doc.

The Settings object, the platforms' settings, the log redaction of secrets and deploy/.env.example are all derived
from VARIABLES; no other module reads the environment. A parser takes the stripped text of a set variable and
returns its value, or raises ValueError with what the variable accepts; `value` turns that into one SettingsError
line naming the variable (never repeating a secret's value). Unset or empty means the declared default.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.errors import AdvisorError

__all__ = ["BY_NAME", "SECRETS", "VARIABLES", "SettingsError", "Variable", "check", "raw", "require", "value"]


class SettingsError(AdvisorError):
    """A setting is missing or malformed; the message names the variable to set."""


@dataclass(frozen=True)
class Variable:
    """One environment variable and how it is read, checked and documented."""

    name: str
    parse: Callable[[str], Any]  # stripped text -> value; ValueError("what it accepts") when malformed
    default: Any  # when unset or empty; None: worked out by its reader (the doc says how)
    doc: str  # one line, as deploy/.env.example shows it
    section: str  # its heading in deploy/.env.example
    secret: bool = False  # its value never reaches a log line, an error message or a repr
    scope: str = "advisor"  # checked at the start of every command ("advisor"), of the bots ("serve"), of one
    #                        platform ("slack", "discord"), or never: read by deploy/compose.yaml only ("compose")
    example: str = ""  # the value deploy/.env.example shows (must parse)
    fill_in: bool = False  # an uncommented line in deploy/.env.example: one of the few a deployment must set


# -- parsers ---------------------------------------------------------------------------------------------------

ON_WORDS, OFF_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")  # a switch's values, any case


def text(raw: str) -> str:
    return raw


def folder(raw: str) -> Path:
    return Path(raw).expanduser()


def switch(on: str, off: str) -> Callable[[str], bool]:
    """1/true/yes/on or 0/false/no/off (any case)."""

    def parse(raw: str) -> bool:
        if raw.lower() in ON_WORDS:
            return True
        if raw.lower() in OFF_WORDS:
            return False
        raise ValueError(f"must be 1 ({on}) or 0 ({off})")

    return parse


def whole(accepts: str, low: int = 0, high: int | None = None) -> Callable[[str], int]:
    """A whole number from `low` to `high` (ASCII digits only)."""

    def parse(raw: str) -> int:
        if re.fullmatch(r"[0-9]+", raw) and low <= int(raw) and (high is None or int(raw) <= high):
            return int(raw)
        raise ValueError(accepts)

    return parse


def seconds(accepts: str, within: Callable[[float], bool]) -> Callable[[str], float]:
    """A number of seconds for which `within` holds."""

    def parse(raw: str) -> float:
        try:
            number = float(raw)
        except ValueError:
            raise ValueError(accepts) from None
        if not within(number):
            raise ValueError(accepts)
        return number

    return parse


def one_of(*choices: str) -> Callable[[str], str]:
    """One of `choices`, in any case (returned lowercased)."""

    def parse(raw: str) -> str:
        if raw.lower() not in choices:
            raise ValueError(f"should be {' or '.join(choices)}")
        return raw.lower()

    return parse


def http_url(accepts: str) -> Callable[[str], str]:
    """An http:// or https:// URL with a host."""
    from urllib.parse import urlsplit

    def parse(raw: str) -> str:
        try:
            parts = urlsplit(raw)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"does not look right: it should be {accepts}")
        return raw

    return parse


def database_url(raw: str) -> str:
    """A postgresql:// URL (or libpq's host= form); errors never repeat it (it may hold a password)."""
    from urllib.parse import urlsplit

    hint = "it should look like postgresql://USER:PASSWORD@HOST:5432/DATABASE (or unset it for SQLite)"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError(f"does not look right (its port is not a number): {hint}") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"does not look right: {hint}")
    if not parts.hostname and "host=" not in parts.query:
        raise ValueError(f"names no host: {hint}")
    return raw


def slack_token(prefix: str, what: str) -> Callable[[str], str]:
    """A Slack token: `prefix`, then letters, digits and dashes."""

    def parse(raw: str) -> str:
        if not raw.startswith(prefix):
            raise ValueError(f"does not look right: it should start with '{prefix}' ({what})")
        if not re.fullmatch(r"[A-Za-z0-9-]+", raw):
            raise ValueError(f"does not look right: a token has only letters, digits and dashes ({what})")
        return raw

    return parse


def signing_secret(raw: str) -> str:
    if raw.startswith("xox") or len(raw) < 16 or not raw.isalnum():
        raise ValueError("does not look right: it is the 32-character Signing Secret from Basic Information > "
                         "App Credentials, not a token")
    return raw


def discord_token(raw: str) -> str:
    if raw.count(".") != 2:
        raise ValueError("does not look like a bot token (three parts separated by dots); copy it from Bot > "
                         "Reset Token, not the application id or client secret")
    return raw


# -- the list --------------------------------------------------------------------------------------------------

SLACK = "Slack (`advisor serve slack`: Socket Mode; `--http`: the HTTP Events API)"
DISCORD = "Discord (`advisor serve discord`)"
PLACES = "Where things live"
PRIVACY = "Privacy"
LLM = "Answers written by a chat model (optional; unset: extractive answers quoting the passages)"
OPERATIONS = "Operations"

VARIABLES = (
    Variable("SLACK_BOT_TOKEN", slack_token("xoxb-", "the Bot User OAuth Token"), "",
             "Bot User OAuth Token (OAuth & Permissions, after installing the app from deploy/slack/manifest.yaml)",
             SLACK, secret=True, scope="slack", fill_in=True),
    Variable("SLACK_APP_TOKEN", slack_token("xapp-", "an app-level token"), "",
             "App-level token with connections:write (Basic Information > App-Level Tokens); Socket Mode only",
             SLACK, secret=True, scope="slack", fill_in=True),
    Variable("SLACK_SIGNING_SECRET", signing_secret, "",
             "Signing Secret (Basic Information > App Credentials); HTTP mode only, bad signatures get 401",
             SLACK, secret=True, scope="slack"),
    Variable("SLACK_API_URL", http_url("a URL like https://slack.com/api/"), "",
             "Web API base URL; leave unset for Slack itself (tests point it at a mock on 127.0.0.1)",
             SLACK, scope="slack", example="https://slack.com/api/"),
    Variable("ADVISOR_SLACK_THREAD_FOLLOW_UPS",
             switch("answer replies in a thread the bot answered in without a new mention", "only mentions"), True,
             "1 (default): a reply in a channel thread advisor answered in is a follow-up, answered without a new "
             "mention (channels can still say `/ask follow-ups off`); 0: only mentions are answered in this workspace",
             SLACK, scope="slack", example="1"),
    Variable("DISCORD_TOKEN", discord_token, "", "Bot token (developer portal > Bot > Reset Token)",
             DISCORD, secret=True, scope="discord", fill_in=True),
    Variable("DISCORD_GUILD_ID", whole("should be a server id (digits: right-click the server > Copy Server ID), "
                                       "or unset it to sync the commands globally"), None,
             "A server id to sync the slash commands to at once (development); unset syncs them globally",
             DISCORD, scope="discord"),
    Variable("DISCORD_SHARD_ID", whole("should be this process's shard number, from 0 to DISCORD_SHARD_COUNT-1"), None,
             "This process's shard (0 to count-1) when several processes share the bot's servers; unset: one process",
             DISCORD, scope="discord"),
    Variable("DISCORD_SHARD_COUNT", whole("should be the number of shard processes, such as 2", low=1), None,
             "How many shard processes there are (set with DISCORD_SHARD_ID in every one of them)",
             DISCORD, scope="discord"),
    Variable("ADVISOR_DISCORD_THREAD_FOLLOW_UPS",
             switch("answer replies in a thread the bot answered in without a new mention", "only mentions"), False,
             "1: a message in a thread advisor answered in is a follow-up without a mention; needs the privileged "
             "Message Content intent switched on in the developer portal (Bot > Privileged Gateway Intents). "
             "Default 0: mentions only", DISCORD, scope="discord", example="0"),
    Variable("ADVISOR_DATA_DIR", folder, None,
             "Folder of the index and the answer store (default ./.advisor; /data in the Docker image)",
             PLACES, example="./.advisor"),
    Variable("ADVISOR_STORE", folder, None,
             "The SQLite store of questions, answers, citations and feedback (default "
             "$ADVISOR_DATA_DIR/advisor.sqlite3)", PLACES),
    Variable("ADVISOR_DATABASE_URL", database_url, "",
             "Several hosts: the store in PostgreSQL, shared by all of them (unset: SQLite in the data folder, one "
             "host). postgresql://USER:PASSWORD@HOST:5432/DATABASE; the password is a secret: never logged, never in "
             "an error message", PLACES, secret=True, example="postgresql://advisor:CHANGE-ME@db.internal:5432/advisor"),
    Variable("POSTGRES_PASSWORD", text, "",
             "The database password of compose.yaml's `postgres` profile (its own PostgreSQL); the same as in the "
             "URL above", PLACES, secret=True, scope="compose"),
    Variable("ADVISOR_CORPUS", folder, None, "Corpus folder (default ./corpus; /app/corpus in the Docker image)",
             PLACES, example="./corpus"),
    Variable("ADVISOR_MODEL", text, None,
             "Embedding model, a sentence-transformers name or folder (default all-MiniLM-L6-v2, loaded offline)",
             PLACES),
    Variable("ADVISOR_INDEX_CHECK_SECONDS",
             seconds("should be a number of seconds such as 5 (0 checks before every question)", lambda s: s >= 0),
             5.0, "How often a running bot looks for a newer index built by `advisor index` or `corpus add`, in "
             "seconds (default 5)", PLACES, example="5"),
    Variable("ADVISOR_TORCH_THREADS", whole("must be a whole number of threads, 1 or more", low=1), 1,
             "CPU threads that encode one question (onnxruntime, or torch on the full path); the index build uses "
             "every core. 1 (default) suits a bot answering several questions at once on shared cores",
             PLACES, example="1"),
    Variable("ADVISOR_HASH_USER_IDS",
             switch("store salted hashes of user ids, the default", "keep raw platform user ids"), True,
             "1 (default): the store keeps salted hashes of user ids; 0 keeps raw platform user ids",
             PRIVACY, example="1"),
    Variable("ADVISOR_USER_SALT", text, "",
             "Salt of those hashes; unset: a random salt kept beside the store (advisor.sqlite3.salt), or in the "
             "database with ADVISOR_DATABASE_URL (so every host agrees). Keep it stable; if you set it, set the same "
             "value on every host", PRIVACY, secret=True),
    Variable("ADVISOR_LLM_URL", http_url("an http(s) URL such as http://localhost:11434/v1 or "
                                         "https://api.openai.com/v1"), "",
             "An OpenAI-compatible endpoint, e.g. http://localhost:11434/v1", LLM),
    Variable("ADVISOR_LLM_MODEL", text, "",
             "The model that endpoint should use, e.g. llama3.1:8b (required with ADVISOR_LLM_URL)", LLM),
    Variable("ADVISOR_LLM_API_KEY", text, "",
             "Its API key, if it needs one (sent as a bearer token, never logged)", LLM, secret=True),
    Variable("ADVISOR_LLM_TIMEOUT",
             seconds("should be a number of seconds between 0 and 120, such as 5", lambda s: 0 < s <= 120), 5.0,
             "Seconds to wait for it before falling back to the extractive answer (default 5)", LLM, example="5"),
    Variable("ADVISOR_LOG_FORMAT", one_of("json", "text"), "text",
             "Log format: text (default, for a terminal) or json (one object per line; the Docker image and systemd "
             "units set it)", OPERATIONS, example="json"),
    Variable("ADVISOR_HEALTH_PORT", whole("should be a TCP port number (1-65535) such as 8080, or unset it",
                                          low=1, high=65535), None,
             "Serve GET /healthz on this port beside Socket Mode or Discord (the Docker image sets 8080); unset: none",
             OPERATIONS, scope="serve", example="8080"),
    Variable("ADVISOR_HEALTH_HOST", text, "127.0.0.1",
             "Address of that health server (default 127.0.0.1; 0.0.0.0 for probes from outside the container)",
             OPERATIONS, scope="serve", example="127.0.0.1"),
)
BY_NAME = {variable.name: variable for variable in VARIABLES}
SECRETS = tuple(variable.name for variable in VARIABLES if variable.secret)


# -- reading ---------------------------------------------------------------------------------------------------

def raw(name: str) -> str:
    """The stripped text of a declared variable ("" when unset); a KeyError for a name not declared above."""
    BY_NAME[name]
    return os.environ.get(name, "").strip()


def value(name: str):
    """The parsed value of a declared variable, its default when unset, or one SettingsError line naming it."""
    variable = BY_NAME[name]
    given = raw(name)
    if not given:
        return variable.default
    try:
        return variable.parse(given)
    except ValueError as exc:
        message = f"{name} {exc}" + ("" if variable.secret else f", not {given!r}")
        raise SettingsError(message if message.endswith(".") else message + ".") from None


def require(name: str, hint: str) -> Any:
    """The parsed value of a variable a command cannot do without, or a SettingsError saying what to set."""
    if not raw(name):
        raise SettingsError(f"{name} is not set. {hint}".strip())
    return value(name)


def check(*scopes: str) -> None:
    """Parse every variable of these scopes, so that a malformed one stops the command now, in one line."""
    for variable in VARIABLES:
        if variable.scope in scopes:
            value(variable.name)
