"""Stand-ins for the local loop (dev.embedded): a console Discord here, and the dry-run Argo
in adapters/dry_run_argo.py.

They let a newcomer watch a command travel with no cluster and no accounts. They are used only
when dev.embedded is on AND the real setting is absent, and every line they print says so, so
that a forgotten setting in production fails at start-up instead of silently dry-running.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Sequence
from typing import Any

from facteur.decisions import ids
from facteur.decisions.interactions import BUTTON, STRING_SELECT, Attachment
from facteur.decisions.journey import Delivered, ReplyTo

log = logging.getLogger("facteur.standins")


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


CONSOLE_MESSAGE_ID = "1100000000000000001"
CONSOLE_THREAD_ID = "1100000000000000002"
# How much of an attached file the console shows.
FILE_PREVIEW_LINES = 5


class ConsoleDiscord:
    """Prints every message facteur would send to Discord."""

    def reply(self, to: ReplyTo, message: dict[str, Any], *, now: float | None = None) -> Delivered:
        self._print(message, to.mention_user_id)
        # An ID of Discord's shape, so that a thread can be started from the message.
        return Delivered(via="interaction", message_id=CONSOLE_MESSAGE_ID)

    def start_thread(self, channel_id: str, message_id: str, name: str) -> str:
        say(f"[discord CONSOLE] started the thread {name!r} from the run's message")
        return CONSOLE_THREAD_ID

    def post_to_thread(self, thread_id: str, message: dict[str, Any]) -> None:
        say("[discord CONSOLE] in the run's thread:")
        self._print(message, None)

    def archive_thread(self, thread_id: str) -> None:
        say("[discord CONSOLE] archived the run's thread")

    def edit_original(self, token: str, message: dict[str, Any]) -> dict[str, Any]:
        self._print(message, None)
        return {}

    def delete_original(self, token: str) -> None:
        say('[discord CONSOLE] deleted the original reply (its "thinking…")')

    def follow_up(
        self, token: str, message: dict[str, Any], files: Sequence[Attachment] = ()
    ) -> dict[str, Any]:
        self._print(message, None, files)
        return {}

    @staticmethod
    def _print(
        message: dict[str, Any], mention_user_id: str | None, files: Sequence[Attachment] = ()
    ) -> None:
        content = message.get("content", "")
        lines = [f"[discord CONSOLE: no bot token] to user {mention_user_id}: {content}"]
        for embed in message.get("embeds") or []:
            lines.append(f"  [{embed.get('title', '')}] {embed.get('url', '')}")
            if embed.get("description"):
                lines.append(f"  {embed['description']}")
            lines.extend(f"  {f['name']}: {f['value']}" for f in embed.get("fields", []))
        lines.extend(_button_lines(message.get("components") or []))
        for file in files:
            lines.append(f"  [file {file.filename}, {len(file.content)} bytes]")
            text = file.content.decode("utf-8", errors="replace").splitlines()
            lines.extend(f"    | {line}" for line in text[:FILE_PREVIEW_LINES])
            if len(text) > FILE_PREVIEW_LINES:
                lines.append(f"    | … {len(text) - FILE_PREVIEW_LINES} more lines")
        say("\n".join(lines))


def _button_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line a button: a link's URL, or the `facteur click` command that clicks it; and one a
    select menu's option, the command that picks it."""
    lines = []
    for row in rows:
        for component in row.get("components") or []:
            label = component.get("label", "")
            custom = component.get("custom_id") or ""
            found = ids.CUSTOM_ID.fullmatch(custom)
            if component.get("type") == STRING_SELECT:
                lines.extend(_option_lines(component, found))
            elif "url" in component:
                lines.append(f"  [{label}] {component['url']}")
            elif found and component.get("type", BUTTON) == BUTTON:
                lines.append(f"  [{label}] facteur click {_click(found[1], found[2], found[3])}")
            elif "custom_id" in component:
                lines.append(f"  [{label}] custom_id {custom}")
    return lines


def _option_lines(menu: dict[str, Any], found: re.Match[str] | None) -> list[str]:
    lines = []
    for option in menu.get("options") or []:
        label, value = option.get("label", ""), option.get("value", "")
        if found and isinstance(value, str) and ids.STEP.fullmatch(value):
            lines.append(f"  [{label}] facteur click {_click(found[1], found[2], value)}")
        else:
            lines.append(f"  [{label}] custom_id {menu.get('custom_id')} value {value}")
    return lines


def _click(action: str, ref: str, step: str | None) -> str:
    # A ref may start with "-", which would read as an option: then the whole custom_id.
    if ref.startswith("-"):
        return ids.custom_id(action, ref, step)
    return f"{action} {ref} {step}" if step else f"{action} {ref}"
