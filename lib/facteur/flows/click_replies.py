"""How command_route answers a click: privately to the one who clicked, by editing the message
the click was on, or by editing the run's own message from a click elsewhere."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from facteur.decisions import render
from facteur.decisions.interactions import Attachment, Click
from facteur.decisions.journey import DispatchResult, ReplyTo
from facteur.errors import DiscordError, SessionStoreError
from facteur.flows.outcome import Outcome
from facteur.flows.ports import Discord, SessionStore

log = logging.getLogger("facteur.command_route")


@dataclass(kw_only=True)
class ClickReplies:
    discord: Discord
    store: SessionStore
    token_ttl_seconds: int

    def whisper(self, click: Click, text: str) -> Outcome:
        """A refusal or a notice, seen only by the one who clicked."""
        outcome = self.whisper_message(click, render.whisper(text))
        return Outcome(outcome.status, "refused")

    def whisper_message(
        self, click: Click, message: dict[str, Any], files: tuple[Attachment, ...] = ()
    ) -> Outcome:
        try:
            self.discord.follow_up(click.token, message, files)
        except DiscordError as err:
            # Unanswered: Knative redelivers the click, which is not yet marked handled.
            log.error("could not answer user %s: %s", click.user_id, err.reason)
            return Outcome(503, "unanswered")
        return Outcome(200, "answered")

    def edit(self, token: str, message: dict[str, Any], what: str) -> None:
        """The message a click was on. Best effort: the action happened, only the message is
        stale, and a redelivery would act again."""
        try:
            self.discord.edit_original(token, message)
        except DiscordError as err:
            log.error("could not update %s: %s", what, err.reason)

    def edit_run(self, session: DispatchResult, message: dict[str, Any]) -> None:
        """The run's own message, as status_callback edits it: the command's interaction token
        while it lives, else the bot. Best effort, as edit."""
        try:
            token = self.store.token(session.correlation_id)
            to = ReplyTo.of_session(session, token, self.token_ttl_seconds)
            self.discord.reply(to, message)
        except (SessionStoreError, DiscordError) as err:
            log.error("could not update the run's message: %s", err)
