"""The Slack settings: the tokens and secret from the declared variables, checked before the slow model load."""

from __future__ import annotations

from dataclasses import dataclass

from bot.variables import require, value


@dataclass(frozen=True)
class SlackTokens:
    """What the app needs to talk to Slack; never logged."""

    bot_token: str
    app_token: str = ""  # Socket Mode only
    signing_secret: str = ""  # HTTP mode only
    api_url: str = ""  # Web API base URL; "" for Slack's own

    def __repr__(self) -> str:
        return f"SlackTokens(api_url={self.api_url!r})"


def tokens_from_env(http: bool) -> SlackTokens:
    """Read and check the Slack settings; a SettingsError names what to set."""
    bot = require("SLACK_BOT_TOKEN", "Set it to the Bot User OAuth Token (OAuth & Permissions page of your Slack app).")
    app_token = secret = ""
    if http:
        secret = require("SLACK_SIGNING_SECRET",
                         "Set it to the Signing Secret (Basic Information > App Credentials) for --http.")
    else:
        app_token = require("SLACK_APP_TOKEN",
                            "Set it to an app-level token with connections:write (Basic Information > App-Level "
                            "Tokens) for Socket Mode, or run with --http.")
    api_url = value("SLACK_API_URL")
    return SlackTokens(bot, app_token, secret, api_url.rstrip("/") + "/" if api_url else "")
