"""The terminal conversation (`advisor chat`): a REPL on the chat service, and the end-to-end test harness."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections import deque

from bot import messages
from bot.console.render import to_text
from bot.service import ChatService, Reply
from retrieval.vocabulary import Question, ReplyStatus

logger = logging.getLogger(__name__)

COMMANDS = ("/help: what I know and how to ask", "/good, /bad [reason]: feedback on the last answer",
            "/new: start a new conversation", "/quit: leave")


def render(reply: Reply) -> str:
    """A reply as terminal text ("" for a duplicate, which is answered once)."""
    if reply.status == ReplyStatus.ANSWERED and reply.answer is not None:
        return to_text(reply.answer)
    return "" if reply.status == ReplyStatus.DUPLICATE else reply.message


class ConsoleSession:
    """One conversation with the service, line in, text out (like errbot's TestBot).

    `await session.send(line)` from async code; `push(line)` then `pop()` from sync code, which runs
    the service on the session's own event loop. Lines starting with "/" are commands.
    """

    def __init__(self, service: ChatService, user: str = "console-user", channel: str = "console"):
        self.service = service
        self.user = user
        self.channel = channel
        self.thread = uuid.uuid4().hex[:8]
        self.last_answer_id = ""
        self.done = False
        self.replies: deque[str] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def send(self, line: str) -> str:
        """Handle one line (a question or a command) and return what the advisor says."""
        line = line.strip()
        command, _, rest = line.partition(" ")
        if command in ("/quit", "/exit"):
            self.done = True
            return "Bye."
        if command == "/help":
            return self.service.help_text() + "\nCommands: " + "; ".join(COMMANDS)
        if command == "/new":
            self.thread = uuid.uuid4().hex[:8]
            return "New conversation: earlier questions no longer count as context."
        if command in ("/good", "/bad"):
            if not self.last_answer_id:
                return messages.NOTHING_TO_RATE
            ok = await self.service.feedback(self.last_answer_id, command == "/good", self.user, "console", rest)
            return messages.FEEDBACK_THANKS if ok else messages.FEEDBACK_FAILED
        if command.startswith("/") and len(command) > 1 and " " not in command:
            return f"Unknown command {command}. Commands: " + "; ".join(COMMANDS)
        reply = await self.service.ask(Question(text=line, user=self.user, platform="console",
                                                channel=self.channel, thread=self.thread))
        if reply.answer_id:
            self.last_answer_id = reply.answer_id
        return render(reply)

    def push(self, line: str) -> None:
        """Send a line from synchronous code; its reply waits for `pop()`."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        self.replies.append(self._loop.run_until_complete(self.send(line)))

    def pop(self) -> str:
        """The oldest reply not yet read."""
        return self.replies.popleft()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None


def run(settings, args, stdin=None, stdout=None) -> int:
    """The REPL: load the index, then read questions until /quit or end of input."""
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    stdout.write("Loading the advisor (the first run builds the index)...\n")
    stdout.flush()
    service = ChatService.from_settings(settings)
    session = ConsoleSession(service)
    interactive = stdin.isatty()
    stdout.write(f"Advisor ready ({len(service.advisor.documents())} documents). Ask a question; /help for more, "
                 "/quit to leave.\n")
    try:
        while not session.done:
            if interactive:
                stdout.write("you> ")
                stdout.flush()
            line = stdin.readline()
            if not line:
                break
            if not line.strip():
                continue
            session.push(line)
            text = session.pop() or messages.DUPLICATE
            stdout.write(f"advisor> {text}\n\n")
            stdout.flush()
    except KeyboardInterrupt:
        stdout.write("\n")
    finally:
        session.close()
        service.store.close()
    return 0
