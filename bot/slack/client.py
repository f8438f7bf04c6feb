"""The Slack Web API client: retries that keep a reply worth reading, and Slack's error codes in one line."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler, AsyncRateLimitErrorRetryHandler, AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.settings import SlackTokens

logger = logging.getLogger(__name__)

# A reply must still be worth reading when it arrives: a couple of retries, a rate limit waited out only if short.
MAX_RETRIES = 2
MAX_RETRY_AFTER_SECONDS = 10


def slack_error(exc: SlackApiError) -> str:
    """The Web API's error code ("ratelimited"), or the HTTP status when the body was not Slack's JSON (a 5xx page)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict) and data.get("error"):
        return str(data["error"])
    return f"HTTP {getattr(exc.response, 'status_code', '?')}"


class CappedRateLimitRetryHandler(AsyncRateLimitErrorRetryHandler):
    """slack_sdk's retry after a 429, which waits the Retry-After it names, but only when that is at most `max_wait`
    seconds: an answer posted a minute late is no longer useful, and retrying sooner would be refused again."""

    def __init__(self, max_retry_count: int = MAX_RETRIES, max_wait: float = MAX_RETRY_AFTER_SECONDS):
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    async def _can_retry_async(self, *, state, request, response=None, error=None) -> bool:
        if not await super()._can_retry_async(state=state, request=request, response=response, error=error):
            return False
        wait = next((v[0] for k, v in response.headers.items() if k.lower() == "retry-after"), "1")
        if not (wait.isascii() and wait.isdigit()) or int(wait) > self.max_wait:
            logger.warning("Slack asks to wait %s s before posting again; not retrying", wait)
            return False
        return True


def retry_handlers() -> list:
    """Retries of a Web API call (chat.postMessage above all) after a rate limit, a 500/503 or a dropped connection."""
    return [CappedRateLimitRetryHandler(), AsyncServerErrorRetryHandler(max_retry_count=MAX_RETRIES),
            AsyncConnectionErrorRetryHandler(max_retry_count=MAX_RETRIES)]


def web_client(tokens: SlackTokens) -> AsyncWebClient:
    """The Web API client for the bot token (SLACK_API_URL, when set, points it at a mock), with retries.

    bolt hands every listener a copy of this client, retry handlers included.
    """
    return AsyncWebClient(token=tokens.bot_token, base_url=tokens.api_url or AsyncWebClient.BASE_URL,
                          retry_handlers=retry_handlers())
