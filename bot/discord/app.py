"""The Discord handlers on a discord.py Client: slash commands, the message menu, mentions, thread follow-ups, buttons,
the form."""

from __future__ import annotations

import asyncio
import logging
import re

import discord
from discord import app_commands

from bot import messages
from bot.assistant_prompts import SectionQuestions
from bot.discord.inbound import PLATFORM, find_value, place, strip_mentions, to_question
from bot.discord.render import AnswerButton, SuggestionButton, answer_view, to_content, to_embed, to_help_embed
from bot.discord.threads import follow_ups_from_env, mentioned_elsewhere, to_choices
from bot.dispatch import dispatch
from bot.guards import BoundedDict
from bot.messages import is_help
from bot.service import ChatService, Reply

logger = logging.getLogger(__name__)

NO_PINGS = discord.AllowedMentions.none()
REASON_ID = re.compile(r"advisor:why:(?P<answer_id>[A-Za-z0-9_.\-]{1,80})")
REASON_INPUT = "reason"
# what the bot needs in a channel: see it, reply (a reply needs the history), in threads too, with embeds
PERMISSIONS = discord.Permissions(view_channel=True, send_messages=True, send_messages_in_threads=True,
                                  embed_links=True, read_message_history=True)
SCOPES = ("bot", "applications.commands")


def intents(message_content: bool = False) -> discord.Intents:
    """Guilds (channel and thread types), guild and DM messages; the privileged message content only when asked
    (for follow-ups in a thread without a mention).

    Without message content, Discord still sends the text of messages that mention the bot and of DMs.
    """
    wanted = discord.Intents.none()
    wanted.guilds = wanted.guild_messages = wanted.dm_messages = True
    wanted.message_content = message_content
    return wanted


def invite_url(application_id: int) -> str:
    """The link that adds the bot to a server with the scopes and permissions it needs."""
    return discord.utils.oauth_url(application_id, permissions=PERMISSIONS, scopes=SCOPES)


class ReasonModal(discord.ui.Modal, title="What was missing?"):
    """Asked after "Not helpful" (already recorded); the submit is handled by custom_id, so it survives restarts."""

    reason = discord.ui.TextInput(label="Why wasn't it helpful? (optional)", style=discord.TextStyle.paragraph,
                                  required=False, max_length=1000, custom_id=REASON_INPUT)

    def __init__(self, answer_id: str):
        super().__init__(custom_id=f"advisor:why:{answer_id}", timeout=900)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        pass  # DiscordAdapter.on_interaction answers every "advisor:why:" submit, stored modal or not


class DiscordAdapter:
    """Wires the chat service into a discord.py Client: commands, the mention handler and the buttons."""

    def __init__(self, service: ChatService, guild_id: int | None = None, shard: tuple[int, int] | None = None):
        self.service = service
        self.guild = discord.Object(id=guild_id) if guild_id else None
        sharding = {"shard_id": shard[0], "shard_count": shard[1]} if shard else {}  # (id, count): one per process
        self.questions = SectionQuestions(service.advisor)  # /ask suggestions, from the corpus's section questions
        self.follow_ups = follow_ups_from_env(service.store)  # threads are keyed by their id alone ("" channel)
        self.client = discord.Client(intents=intents(self.follow_ups.enabled), allowed_mentions=NO_PINGS, **sharding)
        self.tree = app_commands.CommandTree(self.client)
        self.answered_in: BoundedDict = BoundedDict(5000)  # our answer message id -> its (channel, thread)
        self._register()

    def _register(self) -> None:
        adapter = self

        @self.tree.command(name="ask", description="Ask advisor a PM career question; the answer cites its sources.")
        @app_commands.describe(question="Your question", private="Only you see the answer (you can share it)")
        async def ask(interaction: discord.Interaction, question: str, private: bool = False) -> None:
            await adapter.on_ask(interaction, question, private)

        @ask.autocomplete("question")
        async def suggest(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return await adapter.on_suggest(current)

        @self.tree.command(name="advisor-help", description="What advisor can answer and which documents it knows.")
        async def advisor_help(interaction: discord.Interaction) -> None:
            await adapter.on_help(interaction)

        @self.tree.context_menu(name="Ask advisor")
        async def ask_message(interaction: discord.Interaction, message: discord.Message) -> None:
            await adapter.on_ask_message(interaction, message)

        self.tree.error(self.on_tree_error)
        self.client.setup_hook = self.setup_hook
        self.client.event(self.on_message)
        self.client.event(self.on_interaction)
        self.client.event(self.on_advisor_button)
        self.client.event(self.on_advisor_suggestion)

    async def setup_hook(self) -> None:
        """Before the gateway connects: persistent buttons, and the commands synced (guild: at once)."""
        self.client.add_dynamic_items(AnswerButton, SuggestionButton)
        if self.client.application_id:
            logger.info("Invite link: %s", invite_url(self.client.application_id))
        if self.client.shard_id:  # shards 1..N-1: shard 0 syncs the commands for all of them
            return
        try:
            if self.guild is not None:
                self.tree.copy_global_to(guild=self.guild)
                synced = await self.tree.sync(guild=self.guild)
                logger.info("Synced %d commands to guild %s", len(synced), self.guild.id)
            else:
                synced = await self.tree.sync()
                logger.info("Synced %d global commands (they can take a while to appear)", len(synced))
        except discord.HTTPException as exc:  # mentions and DMs still work without commands
            logger.error("Could not sync the commands (%s); was the bot invited with the applications.commands "
                         "scope, and is DISCORD_GUILD_ID a server it is in?", exc)

    # -- slash commands and the message menu ----------------------------------------------------

    async def on_ask(self, interaction: discord.Interaction, text: str, private: bool) -> None:
        """/ask question [private]: deferred at once, then the answer (ephemeral when private)."""
        try:
            if is_help(text.strip()):  # `/ask help`, as in Slack: only the asker sees it
                await self.on_help(interaction)
                return
            await self._answer_interaction(interaction, text, private)
        except Exception:
            logger.exception("/ask failed in channel %s", interaction.channel_id)
            await self._fail(interaction, deferred_public=not private)

    async def _answer_interaction(self, interaction: discord.Interaction, text: str, private: bool) -> None:
        """Deferred at once, then the answer as the interaction's follow-up (ephemeral when private)."""
        await interaction.response.defer(thinking=True, ephemeral=private)
        # outside a thread, each user's /ask questions in a channel are one conversation (as in Slack)
        channel, thread = place(interaction.channel, self.service.private_thread(str(interaction.user.id)))
        question = to_question(text, interaction.user.id, (channel, thread), self._alias_context(channel, thread))

        async def notice(text: str) -> None:
            await self._notice(interaction, text, deferred_public=not private)

        async def send(reply: Reply) -> None:
            view = answer_view(reply.answer_id, reply.answer, private=private)
            sent = await interaction.followup.send(embed=to_embed(reply.answer), ephemeral=private,
                                                   allowed_mentions=NO_PINGS, wait=True, **_view(view))
            self.answered_in.put(str(sent.id), (channel, thread))

        # an interaction must be answered, a duplicate too: Discord never retries one
        await dispatch(await self.service.ask(question), notice, send, duplicate=messages.DUPLICATE)

    async def on_ask_message(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """"Ask advisor" on a message: answer its text as a reply to it, where it was asked."""
        try:
            if not message.content.strip():  # an image, an embed, or a bot's card: nothing to read
                await self._notice(interaction, "That message has no text I can answer; try /ask instead.")
                return
            await interaction.response.defer(thinking=True, ephemeral=True)
            channel, thread = place(message.channel, str(message.id))
            question = to_question(message.content, interaction.user.id, (channel, thread),
                                   self._alias_context(channel, thread))

            async def notice(text: str) -> None:
                await self._notice(interaction, text, deferred_public=False)

            async def send(reply: Reply) -> None:
                try:
                    sent = await message.channel.send(
                        embed=to_embed(reply.answer), reference=message.to_reference(fail_if_not_exists=False),
                        allowed_mentions=NO_PINGS, **_view(answer_view(reply.answer_id, reply.answer)))
                except discord.HTTPException as exc:  # no access to the channel: answer privately, shareable
                    logger.warning("Could not reply in channel %s (%s); answering privately", channel, exc)
                    view = answer_view(reply.answer_id, reply.answer, private=True)
                    await interaction.followup.send(embed=to_embed(reply.answer), ephemeral=True,
                                                    allowed_mentions=NO_PINGS, **_view(view))
                    return
                self.answered_in.put(str(sent.id), (channel, thread))
                await interaction.followup.send(to_content(f"Answered: {sent.jump_url}"), ephemeral=True,
                                                allowed_mentions=NO_PINGS)

            await dispatch(await self.service.ask(question), notice, send, duplicate=messages.DUPLICATE)
        except Exception:
            logger.exception("Ask advisor failed on message %s", message.id)
            await self._fail(interaction, deferred_public=False)

    async def on_suggest(self, typed: str) -> list[app_commands.Choice[str]]:
        """/ask's autocomplete: the corpus's section questions that match what has been typed so far."""
        try:
            return to_choices(await asyncio.to_thread(self.questions.matching, typed))
        except Exception:  # no suggestions is better than an error on every keystroke
            logger.exception("Could not suggest questions")
            return []

    async def on_help(self, interaction: discord.Interaction) -> None:
        """/advisor-help: what the bot answers, its documents, citing and sharing (only for the asker)."""
        try:
            await interaction.response.send_message(embed=to_help_embed(self.service.help_text()), ephemeral=True,
                                                    allowed_mentions=NO_PINGS)
        except Exception:
            logger.exception("/advisor-help failed")
            await self._fail(interaction, deferred_public=False)

    async def on_tree_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        """Anything the command handlers did not catch (an unknown or outdated command, a bad option)."""
        logger.error("Command %s failed: %s", getattr(interaction.command, "name", "?"), error, exc_info=error)
        await self._fail(interaction, deferred_public=False)

    # -- mentions and DMs ---------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """@advisor <question> in a channel or thread, or any DM: the answer as a reply. In a thread advisor answered
        in, a person's message for nobody else is a follow-up (with ADVISOR_DISCORD_THREAD_FOLLOW_UPS=1)."""
        me = self.client.user
        if me is None or message.author.bot or message.webhook_id or message.author.id == me.id:
            return
        in_dm = isinstance(message.channel, discord.DMChannel)
        role = message.guild.self_role if message.guild else None
        where = None
        if not in_dm and not (any(u.id == me.id for u in message.mentions)
                              or (role is not None and role.id in message.raw_role_mentions)):
            where = await self._follow_up_thread(message, me.id, role.id if role else None)
            if where is None:
                return
        text = strip_mentions(message.content, me.id, role.id if role else None)
        try:
            if is_help(text):
                await self._reply(message, embed=to_help_embed(self.service.help_text()))
                return
            channel, thread = place(where or await self._resolve(message), str(message.id))
            question = to_question(text, message.author.id, (channel, thread), self._alias_context(channel, thread))
            await self._typing(message.channel)

            async def notice(text: str) -> None:
                await self._reply(message, content=to_content(text))

            async def send(reply: Reply) -> None:
                sent = await self._reply(message, embed=to_embed(reply.answer),
                                         **_view(answer_view(reply.answer_id, reply.answer)))
                self.answered_in.put(str(sent.id), (channel, thread))
                self.follow_ups.note("", thread)  # a thread opened on the asking message has its id

            await dispatch(await self.service.ask(question), notice, send)  # a duplicate: the answer is there
        except Exception:
            logger.exception("Answering message %s in channel %s failed", message.id, message.channel.id)
            try:
                await self._reply(message, content=messages.ERROR)
            except Exception:
                logger.exception("Could not tell the user in channel %s that answering failed", message.channel.id)

    async def _follow_up_thread(self, message: discord.Message, me_id: int, role_id: int | None):
        """The thread of a message that is a follow-up without a mention, or None for any other message.

        Cheap checks first (switch, text, the thread id answered in), so that other channels' messages cost no
        request; the channel is fetched only for such a candidate, to know its parent.
        """
        thread = str(message.channel.id)
        if not (self.follow_ups.enabled and message.content.strip()) or mentioned_elsewhere(message, me_id, role_id):
            return None
        if not (thread in self.answered_in or await asyncio.to_thread(self.follow_ups.answered_in, "", thread)):
            return None
        where = await self._resolve(message)
        if not isinstance(where, discord.Thread) or not await asyncio.to_thread(self.follow_ups.on_in,
                                                                                 str(where.parent_id)):
            return None
        return where

    async def _resolve(self, message: discord.Message):
        """The message's channel with its type: an uncached guild channel is fetched (is it a thread?)."""
        channel = message.channel
        if isinstance(channel, discord.PartialMessageable) and channel.guild_id is not None:
            try:
                return await self.client.fetch_channel(channel.id)
            except discord.HTTPException as exc:
                logger.warning("Could not fetch channel %s (%s); answering without thread context", channel.id, exc)
        return channel

    @staticmethod
    async def _typing(channel) -> None:
        try:
            await channel.typing()
        except discord.HTTPException as exc:  # a missing permission must not stop the answer
            logger.debug("No typing indicator in %s: %s", channel.id, exc)

    @staticmethod
    async def _reply(message: discord.Message, **kwargs) -> discord.Message:
        return await message.channel.send(reference=message.to_reference(fail_if_not_exists=False),
                                          allowed_mentions=NO_PINGS, **kwargs)

    def _alias_context(self, channel: str, thread: str) -> tuple[str, ...]:
        """The thread's earlier questions; in a thread started from one of our answers, the question that
        answer was for."""
        remembered = self.service.context_for(PLATFORM, channel, thread) if thread else ()
        if remembered or not thread:
            return remembered
        origin = self.answered_in.get(thread)
        return self.service.context_for(PLATFORM, *origin) if origin else ()

    # -- buttons and the reason form ----------------------------------------------------------

    async def on_advisor_button(self, interaction: discord.Interaction, action: str, answer_id: str) -> None:
        """Helpful / not helpful (recorded in the store), and "Share in channel" for a private answer."""
        try:
            if action == "share":
                await self._share(interaction, answer_id)
                return
            helpful = action == "fb:up"
            ok = await self.service.feedback(answer_id, helpful, str(interaction.user.id), PLATFORM)
            if not ok:
                await self._notice(interaction, messages.FEEDBACK_FAILED)
            elif helpful:
                await self._notice(interaction, messages.FEEDBACK_THANKS)
            else:
                await interaction.response.send_modal(ReasonModal(answer_id))
        except Exception:
            logger.exception("Button %s on answer %s failed", action, answer_id)
            await self._fail(interaction, deferred_public=False)

    async def on_advisor_suggestion(self, interaction: discord.Interaction, question: str) -> None:
        """A suggested question under a "not covered" answer: asked as /ask would ask it, privately when only the
        clicker could see that answer."""
        message = interaction.message
        private = bool(message is not None and message.flags.ephemeral)
        try:
            await self._answer_interaction(interaction, question, private)
        except Exception:
            logger.exception("Asking a suggested question failed in channel %s", interaction.channel_id)
            await self._fail(interaction, deferred_public=not private)

    async def _share(self, interaction: discord.Interaction, answer_id: str) -> None:
        answer = self.service.get_answer(answer_id)
        if answer is None:
            await self._notice(interaction, messages.ANSWER_GONE)
            return
        await interaction.response.send_message(
            to_content(f"{interaction.user.mention} shared an answer from advisor:"), embed=to_embed(answer),
            allowed_mentions=NO_PINGS, **_view(answer_view(answer_id, answer)))

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """The reason form's submit, matched by custom_id so that it also works after a restart."""
        if interaction.type is not discord.InteractionType.modal_submit:
            return
        data = interaction.data or {}
        match = REASON_ID.fullmatch(data.get("custom_id", ""))
        if match is None:
            return
        try:
            reason = find_value(data.get("components", []), REASON_INPUT)
            await self.service.feedback(match["answer_id"], False, str(interaction.user.id), PLATFORM, reason)
            await self._notice(interaction, messages.FEEDBACK_THANKS)
        except Exception:
            logger.exception("Feedback reason for %s failed", match["answer_id"])
            await self._fail(interaction, deferred_public=False)

    # -- telling the user -----------------------------------------------------------------------

    @staticmethod
    async def _notice(interaction: discord.Interaction, text: str, deferred_public: bool = False) -> None:
        """A short message only the user sees, whether or not the interaction was deferred."""
        if not interaction.response.is_done():
            await interaction.response.send_message(to_content(text), ephemeral=True, allowed_mentions=NO_PINGS)
            return
        if deferred_public:  # the first follow-up would replace the public "thinking" message, so remove it
            try:
                await interaction.delete_original_response()
            except discord.HTTPException as exc:
                logger.warning("Could not remove the deferred response: %s", exc)
        await interaction.followup.send(to_content(text), ephemeral=True, allowed_mentions=NO_PINGS)

    async def _fail(self, interaction: discord.Interaction, deferred_public: bool) -> None:
        try:
            await self._notice(interaction, messages.ERROR, deferred_public=deferred_public)
        except Exception:
            logger.exception("Could not tell the user that the interaction failed")


def _view(view: discord.ui.View | None) -> dict:
    """discord.py wants no `view` argument at all rather than view=None on some sends."""
    return {"view": view} if view is not None else {}


def create_bot(service: ChatService, guild_id: int | None = None,
               shard: tuple[int, int] | None = None) -> discord.Client:
    """A discord.py Client with the advisor's commands (synced to `guild_id` at start, else globally).

    `shard` is (shard_id, shard_count) when several processes share the bot's guilds; None: one connection.
    """
    adapter = DiscordAdapter(service, guild_id, shard)
    adapter.client.advisor = adapter  # for tests and debugging
    return adapter.client
