"""How every adapter sends a Reply: nothing for a duplicate, a notice when not answered, else the answer."""

from __future__ import annotations

from typing import Awaitable, Callable, TypeVar

from bot import messages
from retrieval.vocabulary import ReplyStatus

T = TypeVar("T")


async def dispatch(reply, notice: Callable[[str], Awaitable[object]], send: Callable[[object], Awaitable[T]],
                   duplicate: str | None = None) -> T | None:
    """Send `reply` the one way that fits its status.

    Args:
        reply: the chat service's Reply.
        notice: `async notice(text)` for a question not answered (the text says why and what to do).
        send: `async send(reply)` that renders and sends an answered reply; what it returns is returned.
        duplicate: the notice for a duplicate where the platform must answer something (a Discord
            interaction); None sends nothing, the first answer being there already.
    """
    if reply.status == ReplyStatus.DUPLICATE:
        if duplicate is not None:
            await notice(duplicate)
        return None
    if reply.status != ReplyStatus.ANSWERED or reply.answer is None:
        await notice(reply.message or messages.ERROR)
        return None
    return await send(reply)
