"""Slack's request signature, checked on the raw bytes before anything parses them; replays are told apart."""

from __future__ import annotations

import logging
from typing import Callable, Mapping

from slack_sdk.signature import Clock, SignatureVerifier

from bot.guards import DuplicateFilter

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 300  # Slack's window (and slack_sdk's): a request signed longer ago, or ahead, is refused
TIMESTAMP, SIGNATURE = "X-Slack-Request-Timestamp", "X-Slack-Signature"


class SignedRequests:
    """Tells the requests Slack signed with SLACK_SIGNING_SECRET from anything else, and a replay from a new one.

    Args:
        signing_secret: the app's Signing Secret.
        claim: the store's `claim_event`, so that replicas sharing it agree on which request came first.
    """

    def __init__(self, signing_secret: str, claim: Callable[[str], bool] | None = None, clock: Clock | None = None):
        self.verifier = SignatureVerifier(signing_secret, clock or Clock())
        # a signature is valid from MAX_AGE before to MAX_AGE after its timestamp: remember it that long
        self.seen = DuplicateFilter(window=2 * MAX_AGE_SECONDS, keys=20000)
        self.claim = claim

    def refusal(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Why the request is not Slack's (one phrase for the log, never the body), or "" when it is signed."""
        timestamp, signature = headers.get(TIMESTAMP, ""), headers.get(SIGNATURE, "")
        if not timestamp or not signature:
            return f"it is not signed (no {SIGNATURE} or {TIMESTAMP} header)"
        if not (timestamp.isascii() and timestamp.isdigit()):
            return f"its {TIMESTAMP} is not a number"
        if abs(self.verifier.clock.now() - int(timestamp)) > MAX_AGE_SECONDS:
            return "it was signed more than 5 minutes from now (a replay, or this machine's clock is off)"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "its body is not UTF-8 text (Slack's always is)"
        if not self.verifier.is_valid(text, timestamp, signature):
            return "its signature does not match SLACK_SIGNING_SECRET"
        return ""

    def replayed(self, headers: Mapping[str, str]) -> bool:
        """Whether a signed request was received before: the same signature means the same timestamp and body.

        Slack never sends the same bytes twice (a retry, a second click or a second /ask differs), so an identical
        request within the signature's window is someone replaying it.
        """
        signature = headers.get(SIGNATURE, "")
        if not self.seen.first(signature):
            return True
        if self.claim is None:
            return False
        try:
            return not self.claim(f"slack-request:{signature}")
        except Exception:  # a store that cannot be written must not stop the request
            logger.exception("Could not record a request's signature; handling it")
            return False
