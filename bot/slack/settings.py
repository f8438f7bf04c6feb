"""The Slack settings: the tokens and secret from the environment, checked before the slow model load."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from bot.settings import SettingsError, require_env

_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9-]+")


@dataclass(frozen=True)
class SlackTokens:
    """What the app needs to talk to Slack; never logged."""

    bot_token: str
    app_token: str = ""  # Socket Mode only
    signing_secret: str = ""  # HTTP mode only
    api_url: str = ""  # Web API base URL; "" for Slack's own

    def __repr__(self) -> str:
        return f"SlackTokens(api_url={self.api_url!r})"


def _token(name: str, prefix: str, hint: str) -> str:
    value = require_env(name, prefix, hint)
    if not _TOKEN_SHAPE.fullmatch(value):
        raise SettingsError(f"{name} does not look right: a token has only letters, digits and dashes. {hint}")
    return value


def tokens_from_env(http: bool) -> SlackTokens:
    """Read and check the Slack settings; a SettingsError names what to set."""
    bot = _token("SLACK_BOT_TOKEN", "xoxb-",
                 "Set it to the Bot User OAuth Token (OAuth & Permissions page of your Slack app).")
    app_token = secret = ""
    if http:
        secret = require_env("SLACK_SIGNING_SECRET", "",
                             "Set it to the Signing Secret (Basic Information > App Credentials) for --http.")
        if secret.startswith("xox") or len(secret) < 16 or not secret.isalnum():
            raise SettingsError("SLACK_SIGNING_SECRET does not look right: it is the 32-character Signing Secret "
                                "from Basic Information > App Credentials, not a token.")
    else:
        app_token = _token("SLACK_APP_TOKEN", "xapp-",
                           "Set it to an app-level token with connections:write (Basic Information > App-Level "
                           "Tokens) for Socket Mode, or run with --http.")
    api_url = os.environ.get("SLACK_API_URL", "").strip()
    if api_url and not re.match(r"https?://", api_url):
        raise SettingsError("SLACK_API_URL does not look right: it should be a URL like https://slack.com/api/.")
    return SlackTokens(bot, app_token, secret, api_url.rstrip("/") + "/" if api_url else "")
