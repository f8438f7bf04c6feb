"""What every adapter shares: the reply dispatch by status, and the platform registry's lazy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot import messages
from bot.dispatch import dispatch
from bot.platforms import PLATFORMS
from bot.service import Reply
from retrieval.vocabulary import Answer, ReplyStatus


class Outbox:
    """The notice and send callbacks of an adapter, recording what they were given."""

    def __init__(self):
        self.notices: list[str] = []
        self.sent: list[Reply] = []

    async def notice(self, text: str) -> None:
        self.notices.append(text)

    async def send(self, reply: Reply) -> str:
        self.sent.append(reply)
        return "message-id"


async def test_an_answered_reply_is_rendered_and_sent():
    out = Outbox()
    reply = Reply(ReplyStatus.ANSWERED, "", Answer(question="q", text="a"), "id1")
    assert await dispatch(reply, out.notice, out.send) == "message-id"
    assert out.sent == [reply] and out.notices == []


@pytest.mark.parametrize("status", [s for s in ReplyStatus if s not in (ReplyStatus.ANSWERED, ReplyStatus.DUPLICATE)])
async def test_a_reply_not_answered_is_a_notice_saying_why(status):
    out = Outbox()
    assert await dispatch(Reply(status, "Please wait 3 seconds."), out.notice, out.send) is None
    assert out.notices == ["Please wait 3 seconds."] and out.sent == []


async def test_a_notice_without_text_says_something_went_wrong():
    out = Outbox()
    await dispatch(Reply(ReplyStatus.ERROR, ""), out.notice, out.send)
    assert out.notices == [messages.ERROR]


async def test_a_duplicate_sends_nothing_unless_the_platform_must_answer():
    out = Outbox()
    assert await dispatch(Reply(ReplyStatus.DUPLICATE, ""), out.notice, out.send) is None
    assert out.notices == [] and out.sent == []
    await dispatch(Reply(ReplyStatus.DUPLICATE, ""), out.notice, out.send, duplicate=messages.DUPLICATE)
    assert out.notices == [messages.DUPLICATE] and out.sent == []


def test_serve_offers_exactly_the_registered_platforms(capsys):
    from bot.cli.entry import build_parser

    for name in PLATFORMS:
        assert build_parser().parse_args(["serve", name]).platform == name
        assert callable(PLATFORMS[name]())  # each loader finds its platform's run(settings, args)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "irc"])
    offered = capsys.readouterr().err.split("choose from", 1)[1]
    assert sorted(offered.replace("'", "").replace(")", "").replace(",", " ").split()) == sorted(PLATFORMS)


def test_the_cli_loads_no_platform_sdk_until_a_platform_is_served():
    code = ("import sys; from bot.cli.entry import build_parser; build_parser(); "
            "print(sorted(m for m in ('slack_bolt', 'slack_sdk', 'discord', 'aiohttp') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
