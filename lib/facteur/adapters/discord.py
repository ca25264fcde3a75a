"""The one Discord REST client: edit the deferred reply, send follow-ups, post bot messages.

Every message pings nobody unless facteur names the user itself, waits out 429s, retries 5xx and
network errors a bounded number of times, and keeps tokens out of logs and exception text.
A follow-up with files goes as multipart/form-data: `payload_json` and one `files[n]` per file.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import requests

from facteur import telemetry
from facteur.decisions import ids
from facteur.decisions.interactions import (
    ATTACHMENT_LIMIT,
    EPHEMERAL,
    MAX_ATTACHMENTS,
    Attachment,
    clip,
)
from facteur.decisions.journey import Delivered, ReplyTo
from facteur.errors import DiscordError, TokenRejected

log = logging.getLogger("facteur.discord")

PROJECT_URL = "https://github.com/facteur-dev/facteur"
_REASON_LIMIT = 200
# Backoff for 5xx and network errors: 0.5 s, 1 s, 2 s… capped, each with jitter.
_BACKOFF_BASE = 0.5
_BACKOFF_CAP = 8.0

# Route templates double as the log label: they never hold a real ID or token.
_EDIT_ORIGINAL = "/webhooks/{app}/{token}/messages/@original"
_FOLLOW_UP = "/webhooks/{app}/{token}"
# Tries of one request through 429s and 5xx, by default.
MAX_ATTEMPTS = 4
_CHANNEL_MESSAGES = "/channels/{channel}/messages"
_CHANNEL_MESSAGE = "/channels/{channel}/messages/{message}"
_MESSAGE_THREADS = "/channels/{channel}/messages/{message}/threads"
_CHANNEL = "/channels/{channel}"
# A day without a message archives a thread; facteur archives it itself when the run ends.
THREAD_AUTO_ARCHIVE_MINUTES = 1440
_GLOBAL_COMMANDS = "/applications/{app}/commands"
_GUILD_COMMANDS = "/applications/{app}/guilds/{guild}/commands"

# A filename goes into a part's Content-Disposition and is shown in Discord: a plain one only.
_FILENAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
# type/subtype with simple parameters: nothing that could end the part's header line.
_CONTENT_TYPE = re.compile(
    r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?: *; *[A-Za-z0-9_-]+=[A-Za-z0-9_.+-]+)*"
)
_DESCRIPTION_LIMIT = 1024
# One multipart part as requests' `files=` takes it: (field name, (filename, content, type)).
_Part = tuple[str, tuple[str | None, bytes, str]]


@functools.cache
def user_agent() -> str:
    """Discord asks for this exact shape: DiscordBot ($url, $versionNumber)."""
    # Looked up on first use, not at import: reading package metadata costs a few ms.
    from importlib.metadata import PackageNotFoundError, version

    try:
        number = version("facteur")
    except PackageNotFoundError:  # running from a checkout that was never installed
        number = "0"
    return f"DiscordBot ({PROJECT_URL}, {number})"


def _snowflake(value: Any, what: str) -> str:
    if not ids.is_snowflake(value):
        raise DiscordError(None, f"{what} is not a Discord snowflake")
    return value


def _token(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise DiscordError(None, "interaction token is missing")
    return value


def _segment(value: str) -> str:
    # An ID or token must stay one path segment, whatever it holds.
    return quote(value, safe="")


class _RedactWebhookTokens(logging.Filter):
    """urllib3 logs each request line at DEBUG; the webhook path in it holds the token."""

    _PATTERN = re.compile(r"(/webhooks/[^/\s]+/)[^/\s?#\"']+")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        redacted = self._PATTERN.sub(r"\1{token}", text)
        if redacted != text:
            record.msg, record.args = redacted, ()
        return True


def _install_redaction() -> None:
    target = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactWebhookTokens) for f in target.filters):
        target.addFilter(_RedactWebhookTokens())


_install_redaction()


class DiscordClient:
    """Talks to Discord's REST API on behalf of one application."""

    def __init__(
        self,
        *,
        api_base_url: str,
        application_id: str | None,
        bot_token: str | None,
        session: requests.Session | None = None,
        timeout: float = 5.0,
        max_attempts: int = MAX_ATTEMPTS,
        max_wait_seconds: float = 15.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base = api_base_url.rstrip("/")
        self._application_id = application_id
        self._bot_token = bot_token or None
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._max_attempts = max(1, max_attempts)
        self._max_wait = max(0.0, max_wait_seconds)
        self._sleep = sleep

    def __repr__(self) -> str:
        # Never the token itself: reprs end up in tracebacks and debug logs.
        bot = "set" if self._bot_token else "unset"
        return f"DiscordClient(api_base_url={self._base!r}, bot_token={bot})"

    # -- the three routes ---------------------------------------------------------------------

    def edit_original(self, token: str, message: dict[str, Any]) -> dict[str, Any]:
        """Edit the interaction's first (usually deferred) reply. Needs no bot token."""
        path = _EDIT_ORIGINAL.format(app=self._app_segment(), token=_segment(_token(token)))
        body = _outgoing(message)
        return self._send("PATCH", _EDIT_ORIGINAL, path, body, tokens=(token,), webhook=True)

    def delete_original(self, token: str) -> None:
        """Delete the interaction's first reply (its "thinking…"), so that a refusal can be
        said privately instead. Needs no bot token. Already gone (404) is done too: a
        redelivery deletes it again."""
        path = _EDIT_ORIGINAL.format(app=self._app_segment(), token=_segment(_token(token)))
        try:
            self._send("DELETE", _EDIT_ORIGINAL, path, None, tokens=(token,), webhook=True)
        except TokenRejected as err:
            if err.status != 404:
                raise
            log.info("the original reply was already gone (HTTP 404)")

    def follow_up(
        self, token: str, message: dict[str, Any], files: Sequence[Attachment] = ()
    ) -> dict[str, Any]:
        """Send a new message on the interaction. Needs no bot token.

        With `files`, the message goes as multipart/form-data: `payload_json` declares each file
        in `attachments` by its index, and `files[n]` carries it. Too many files, one too large
        or a filename outside [A-Za-z0-9._-]{1,100} raise DiscordError before anything is sent.
        """
        path = _FOLLOW_UP.format(app=self._app_segment(), token=_segment(_token(token)))
        body = _outgoing(message)
        parts = _multipart(body, files) if files else None
        return self._send(
            "POST", _FOLLOW_UP, path, body, tokens=(token,), webhook=True, files=parts
        )

    def post_to_channel(
        self,
        channel_id: str,
        message: dict[str, Any],
        *,
        mention_user_id: str | None = None,
        nonce: str | None = None,
        reply_to: str | None = None,
    ) -> dict[str, Any]:
        """Post as the bot; `mention_user_id` is prefixed as a mention and the only one allowed;
        `reply_to` makes the post a reply to that message of the channel (pinging no one).

        With `nonce` (ReplyTo.nonce: the same for every copy of what is said), Discord returns
        the message already posted with it in the last few minutes instead of a second one.
        """
        if not self._bot_token:
            raise DiscordError(None, "cannot post to the channel: no bot token is configured")
        path = _CHANNEL_MESSAGES.format(channel=_segment(_snowflake(channel_id, "channel id")))
        if mention_user_id is not None:
            _snowflake(mention_user_id, "user id to mention")
        body = _not_ephemeral(_outgoing(message, mention_user_id=mention_user_id))
        if reply_to is not None:
            # A reply whose original is gone is still posted, as a plain message.
            body["message_reference"] = {
                "message_id": _snowflake(reply_to, "message id"),
                "channel_id": channel_id,
                "fail_if_not_exists": False,
            }
        # The nonce makes a retried POST idempotent: Discord returns the first message. The
        # caller's spans every copy of the message; a random one, this call's own retries.
        if nonce is not None:
            body["nonce"], body["enforce_nonce"] = nonce, True
        elif body.get("nonce") is None:
            body["nonce"] = secrets.token_hex(12)
            body["enforce_nonce"] = True
        return self._send("POST", _CHANNEL_MESSAGES, path, body, tokens=(), webhook=False)

    def edit_message(
        self, channel_id: str, message_id: str, message: dict[str, Any]
    ) -> dict[str, Any]:
        """Edit one of the bot's own messages (the interaction's reply is one), by the bot token:
        what keeps a run's message current once its interaction token has expired."""
        if not self._bot_token:
            raise DiscordError(None, "cannot edit a message: no bot token is configured")
        path = _CHANNEL_MESSAGE.format(
            channel=_segment(_snowflake(channel_id, "channel id")),
            message=_segment(_snowflake(message_id, "message id")),
        )
        body = _not_ephemeral(_outgoing(message))
        return self._send("PATCH", _CHANNEL_MESSAGE, path, body, tokens=(), webhook=False)

    def start_thread(self, channel_id: str, message_id: str, name: str) -> str:
        """Start a public thread from one of the channel's messages (the run's); its ID. Needs
        the bot's Create Public Threads permission."""
        if not self._bot_token:
            raise DiscordError(None, "cannot start a thread: no bot token is configured")
        path = _MESSAGE_THREADS.format(
            channel=_segment(_snowflake(channel_id, "channel id")),
            message=_segment(_snowflake(message_id, "message id")),
        )
        body = {"name": clip(name, 100), "auto_archive_duration": THREAD_AUTO_ARCHIVE_MINUTES}
        thread = self._send("POST", _MESSAGE_THREADS, path, body, tokens=(), webhook=False)
        return _snowflake(thread.get("id"), "thread id")

    def post_to_thread(self, thread_id: str, message: dict[str, Any]) -> None:
        """A message in the run's thread (a thread is a channel; Send Messages in Threads)."""
        self.post_to_channel(thread_id, message)

    def archive_thread(self, thread_id: str) -> None:
        """Archive the run's thread once the run has ended (Manage Threads)."""
        if not self._bot_token:
            raise DiscordError(None, "cannot archive a thread: no bot token is configured")
        path = _CHANNEL.format(channel=_segment(_snowflake(thread_id, "thread id")))
        self._send("PATCH", _CHANNEL, path, {"archived": True}, tokens=(), webhook=False)

    def overwrite_commands(
        self, commands: list[dict[str, Any]], *, guild_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Replace the application's slash commands in one guild (or globally, guild_id None).

        Discord's bulk overwrite: commands left out are deleted. Needs the bot token. Returns the
        commands as Discord now holds them.
        """
        if not self._bot_token:
            raise DiscordError(None, "cannot register commands: no bot token is configured")
        app = self._app_segment()
        if guild_id is None:
            route, path = _GLOBAL_COMMANDS, _GLOBAL_COMMANDS.format(app=app)
        else:
            guild = _segment(_snowflake(guild_id, "guild id"))
            route, path = _GUILD_COMMANDS, _GUILD_COMMANDS.format(app=app, guild=guild)
        # A PUT replaces the whole set, so retrying it after a 429 or 5xx is safe.
        response = self._exchange("PUT", route, path, list(commands), tokens=(), webhook=False)
        try:
            data = response.json()
        except ValueError:
            return []
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    # -- the one entry point most callers want ---------------------------------------------------

    def reply(self, to: ReplyTo, message: dict[str, Any], *, now: float | None = None) -> Delivered:
        """Edit the original reply while the token lives; after, edit that same message as the
        bot; only when that is refused (an ephemeral or deleted reply, missing permissions),
        post in the channel, as a reply to the original when there is one."""
        now = time.time() if now is None else now
        why = "the interaction token has expired"
        if to.token and to.token_lives(now):
            try:
                sent = self.edit_original(to.token, message)
                return Delivered(via="interaction", message_id=_message_id(sent))
            except TokenRejected as err:
                log.warning(
                    "interaction token refused (HTTP %s); posting to the channel", err.status
                )
                why = "Discord refused the interaction token"
        elif not to.token:
            why = "there is no interaction token"
        if not self._bot_token:
            raise DiscordError(None, f"{why} and no bot token is configured to post instead")
        if to.channel_id is None:
            raise DiscordError(None, f"{why} and the interaction has no channel to post in")
        if to.message_id is not None:
            try:
                sent = self.edit_message(to.channel_id, to.message_id, message)
                return Delivered(via="message", message_id=_message_id(sent) or to.message_id)
            except DiscordError as err:
                if err.status not in (403, 404):
                    raise
                log.warning("the bot may not edit the run's message (HTTP %s); posting", err.status)
        sent = self.post_to_channel(
            to.channel_id,
            message,
            mention_user_id=to.mention_user_id,
            nonce=to.nonce(),
            reply_to=to.message_id,
        )
        return Delivered(via="channel", message_id=_message_id(sent))

    # -- plumbing ---------------------------------------------------------------------------------

    def _app_segment(self) -> str:
        if self._application_id is None:
            raise DiscordError(None, "no application id is configured (discord.application_id)")
        return _segment(_snowflake(self._application_id, "application id"))

    def _headers(
        self, webhook: bool, *, multipart: bool = False, body: bool = True
    ) -> dict[str, Any]:
        # A None value drops a header the session would otherwise send; for multipart, requests
        # then sets the Content-Type itself, with the boundary it chose; without a body, none.
        headers: dict[str, Any] = {
            "User-Agent": user_agent(),
            "Content-Type": None if multipart or not body else "application/json",
            "Accept": "application/json",
        }
        # Webhook routes are authorised by the token in the path; None also drops any
        # Authorization a shared session carries, so the bot token never goes where it's not needed.
        headers["Authorization"] = None if webhook else f"Bot {self._bot_token}"
        return headers

    def _send(
        self,
        method: str,
        route: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        tokens: tuple[str, ...],
        webhook: bool,
        files: Sequence[_Part] | None = None,
    ) -> dict[str, Any]:
        response = self._exchange(
            method, route, path, body, tokens=tokens, webhook=webhook, files=files
        )
        return _json_object(response)

    def _exchange(
        self,
        method: str,
        route: str,
        path: str,
        body: dict[str, Any] | list[Any] | None,
        *,
        tokens: tuple[str, ...],
        webhook: bool,
        files: Sequence[_Part] | None = None,
    ) -> requests.Response:
        """Send one request until Discord takes it (429 and 5xx retried); the 2xx response.

        With `files` (payload_json among them), the body is multipart/form-data instead of JSON;
        with a body of None (a DELETE), there is none.
        """
        label = f"{method} {route}"
        hidden = (*tokens, *((self._bot_token,) if self._bot_token else ()))
        url = self._base + path
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            status: int | None = None
            try:
                # Parts hold bytes, never streams: each attempt encodes the whole body afresh,
                # so a retry cannot send a file already read to its end.
                response = self._session.request(
                    method,
                    url,
                    json=None if files else body,
                    files=list(files) if files else None,
                    headers=self._headers(webhook, multipart=bool(files), body=body is not None),
                    timeout=self._timeout,
                    # A redirect would be unexpected here, and could carry the token elsewhere.
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                # str(exc) embeds the URL, and with it the interaction token: name the class only.
                problem = type(exc).__name__
                delay = self._backoff(attempt)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                if status == 429:
                    problem = "rate limited (429)"
                    telemetry.count("facteur_discord_rate_limited_total")
                    waits = _retry_after(response)
                    delay = self._backoff(attempt) if waits is None else waits
                elif status >= 500:
                    problem = f"HTTP {status}"
                    delay = self._backoff(attempt)
                else:
                    raise _refused(label, response, webhook, hidden)
            if attempt >= self._max_attempts or waited + delay > self._max_wait:
                raise DiscordError(
                    status, f"{label}: gave up after {attempt} attempt(s): {problem}"
                )
            log.warning(
                "%s: %s; retrying in %.2f s (attempt %d of %d)",
                label,
                problem,
                delay,
                attempt + 1,
                self._max_attempts,
            )
            self._sleep(delay)
            waited += delay

    @staticmethod
    def _backoff(attempt: int) -> float:
        ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (attempt - 1))
        # Jitter spreads retries of many workers; not a security use of randomness.
        return ceiling * (0.5 + random.random() / 2)  # noqa: S311


def _not_ephemeral(body: dict[str, Any]) -> dict[str, Any]:
    # Bot messages cannot be ephemeral; Discord accepts only a few flags from a bot.
    flags = body.get("flags")
    if isinstance(flags, int) and flags & EPHEMERAL:
        if flags & ~EPHEMERAL:
            body["flags"] = flags & ~EPHEMERAL
        else:
            del body["flags"]
    return body


def _outgoing(message: Mapping[str, Any], *, mention_user_id: str | None = None) -> dict[str, Any]:
    """The body to send: content clipped, and mentions limited whatever the caller asked for."""
    body = dict(message)
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise TypeError("message content must be a string")
    if mention_user_id is not None:
        content = f"<@{mention_user_id}> {content or ''}".rstrip()
    if content is not None:
        body["content"] = clip(content)
    allowed: dict[str, list[str]] = {"parse": []}
    if mention_user_id is not None:
        allowed["users"] = [mention_user_id]
    body["allowed_mentions"] = allowed
    return body


def _multipart(body: dict[str, Any], files: Sequence[Attachment]) -> list[_Part]:
    """The parts of a message with files: payload_json first, then files[0], files[1]…

    Declares every file in the body's `attachments` by index (keeping what the caller declared
    of it, such as a description); raises DiscordError for what Discord would refuse or facteur
    must not send.
    """
    files = tuple(files)
    if len(files) > MAX_ATTACHMENTS:
        raise DiscordError(
            None, f"a message carries at most {MAX_ATTACHMENTS} files, not {len(files)}"
        )
    declared = _declared(body.get("attachments"), len(files))
    attachments: list[dict[str, Any]] = []
    parts: list[_Part] = []
    for index, file in enumerate(files):
        content = _file_content(index, file)
        entry = dict(declared.get(index, {}))
        named = entry.get("filename")
        if named is not None and named != file.filename:
            raise DiscordError(
                None, f"attachments declares files[{index}] as {named!r}, not {file.filename!r}"
            )
        # Discord's attachment IDs are snowflakes: the index, as a string.
        entry.update(id=str(index), filename=file.filename)
        if file.description is not None and entry.get("description") is None:
            entry["description"] = clip(file.description, _DESCRIPTION_LIMIT)
        attachments.append(entry)
        parts.append((f"files[{index}]", (file.filename, content, file.content_type)))
    body["attachments"] = attachments
    try:
        payload = json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DiscordError(None, f"the message is not JSON: {type(exc).__name__}") from None
    return [("payload_json", (None, payload.encode(), "application/json")), *parts]


def _declared(value: Any, count: int) -> dict[int, Mapping[str, Any]]:
    """The caller's own `attachments`, by index; each must name one of the files sent."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise DiscordError(None, "message attachments must be a list")
    found: dict[int, Mapping[str, Any]] = {}
    for entry in value:
        index = entry.get("id") if isinstance(entry, Mapping) else None
        # Discord takes the ID as a number or a numeric string.
        if isinstance(index, str) and index.isdecimal() and index.isascii():
            index = int(index)
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
            raise DiscordError(None, f"attachments declares no file sent: {index!r}")
        if index in found:
            raise DiscordError(None, f"attachments declares files[{index}] twice")
        found[index] = entry
    return found


def _file_content(index: int, file: Attachment) -> bytes:
    """The file's bytes, once its name, type and size are fit to send."""
    name = file.filename
    if not isinstance(name, str) or not _FILENAME.fullmatch(name) or not name.strip("."):
        raise DiscordError(None, f"files[{index}] has an unsafe filename: {name!r}")
    kind = file.content_type
    if not isinstance(kind, str) or not _CONTENT_TYPE.fullmatch(kind):
        raise DiscordError(None, f"files[{index}] has an unusable content type: {kind!r}")
    content = file.content
    if not isinstance(content, (bytes, bytearray, memoryview)):
        raise DiscordError(None, f"files[{index}] content must be bytes")
    content = bytes(content)
    if len(content) > ATTACHMENT_LIMIT:
        raise DiscordError(
            None,
            f"files[{index}] ({name}) is {len(content)} bytes, over {ATTACHMENT_LIMIT} bytes",
        )
    return content


def _retry_after(response: requests.Response) -> float | None:
    """Seconds to wait on a 429: the body's retry_after, else the Retry-After header."""
    try:
        data = response.json()
    except ValueError:
        data = None
    candidates = [
        data.get("retry_after") if isinstance(data, dict) else None,
        response.headers.get("Retry-After"),
    ]
    for value in candidates:
        if value is None or isinstance(value, bool):
            continue
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            continue
        if seconds == seconds and seconds != float("inf"):  # not NaN, not infinite
            return max(0.0, seconds)
    return None


def _refused(
    label: str, response: requests.Response, webhook: bool, hidden: tuple[str, ...]
) -> DiscordError:
    status = response.status_code
    detail = _discord_message(response)
    for secret in hidden:
        if secret:
            detail = detail.replace(secret, "[redacted]")
    reason = f"{label}: HTTP {status}" + (f": {detail}" if detail else "")
    if webhook and status in (401, 404):
        return TokenRejected(status, reason)
    return DiscordError(status, reason)


def _discord_message(response: requests.Response) -> str:
    """Discord's own `message`, with the fields an Invalid Form Body names, kept short."""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    text = data.get("message")
    text = text[:_REASON_LIMIT] if isinstance(text, str) else ""
    fields = list(_error_fields(data.get("errors"), ""))[:5]
    if fields:
        text += f" ({', '.join(fields)})"[: _REASON_LIMIT // 2]
    return text


def _error_fields(errors: Any, where: str) -> Iterator[str]:
    # Discord nests {"content": {"_errors": [{"code": ...}]}} along the path of the bad field.
    if not isinstance(errors, dict):
        return
    for key, value in errors.items():
        if key == "_errors":
            if where:
                yield where
        elif isinstance(key, str):
            yield from _error_fields(value, f"{where}.{key}" if where else key)


def _json_object(response: requests.Response) -> dict[str, Any]:
    if response.status_code == 204 or not response.content:
        return {}
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _message_id(message: Mapping[str, Any]) -> str | None:
    value = message.get("id")
    return value if isinstance(value, str) else None
