"""A fake of Discord's REST API on `responses`: every request is checked against the real spec.

Use it as a context manager (or through the `discord_fake` fixture):

    with DiscordFake.running() as discord:
        discord.queue(429, {"message": "slow down", "retry_after": 0.5, "global": False})
        ...code under test...
        [sent] = discord.to("POST", "/channels/{channel_id}/messages")

Each request must name an operation in Discord's OpenAPI spec (method and path), carry path
parameters that fit their schemas, send a JSON body that fits the operation's request schema
with no unknown keys, carry `Bot` auth where the spec requires it and none where it does not,
and send Discord's `DiscordBot (url, version)` User-Agent. A request that breaks a rule is
answered 400 and recorded in `violations`; leaving `running()` asserts there were none, so code
that swallows errors cannot hide a bad request.

Answers: scripted ones from `queue()`/`queue_error()` first (in order, whatever the route), then
a default success shaped like Discord's (a full message object for message routes). A channel
post with `enforce_nonce` and the nonce of one created in that channel less than
DISCORD_NONCE_SECONDS ago is answered, as Discord does, with that message, and creates none
(`channel_messages` holds those created).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from requests import PreparedRequest
from requests.structures import CaseInsensitiveDict

from tests.helpers.contracts import _discord, assert_discord_request, discord_allows_anonymous
from tests.helpers.fakes import DISCORD_NONCE_SECONDS
from tests.helpers.servers import serving
from tests.helpers.support import APP, CHANNEL

DISCORD_API = "https://discord.com/api/v10"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_USER_AGENT_RE = re.compile(r"DiscordBot \(\S+, \S+\)")
_CHANNEL_MESSAGES = "/channels/{channel_id}/messages"


@dataclass(frozen=True)
class SentRequest:
    """One request as Discord received it."""

    method: str
    route: str  # the spec's path template, e.g. /channels/{channel_id}/messages
    params: dict[str, str]  # path parameters, decoded
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # case-insensitive
    json: Any  # decoded body, None when there was none
    url: str

    @property
    def operation(self) -> str:
        return f"{self.method} {self.route}"


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: Any = None  # None: the default body for the route
    headers: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None  # raised instead of answering (e.g. requests.ConnectionError)


class DiscordFake:
    """Records and checks requests to `base_url` on a `responses.RequestsMock`."""

    def __init__(
        self, mock: responses.RequestsMock, base_url: str = DISCORD_API, *, strict: bool = True
    ) -> None:
        self._setup(base_url, strict)
        pattern = re.compile(re.escape(self.base_url) + r"(?:[/?#]|$)")
        for method in _METHODS:
            mock.add_callback(method, pattern, callback=self._handle)

    def _setup(self, base_url: str, strict: bool) -> None:
        _discord()  # skips the test here, not mid-request, when the spec is absent
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url
        self.requests: list[SentRequest] = []
        self.violations: list[str] = []
        # strict: no Authorization where the spec lets a route go without (webhook tokens).
        self.strict = strict
        self._answers: deque[Answer] = deque()
        self._ids = itertools.count(1_100_000_000_000_000_001)
        self._lock = threading.Lock()
        # Messages created by channel posts, and by (channel, nonce) with when: enforce_nonce.
        self.channel_messages: list[dict[str, Any]] = []
        self._nonces: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
        self._nonce_lock = threading.Lock()  # its own: served() holds _lock around _handle
        self.clock = time.time

    @classmethod
    @contextmanager
    def running(cls, base_url: str = DISCORD_API, *, strict: bool = True) -> Iterator[DiscordFake]:
        """A fake on its own RequestsMock; asserts on exit that no request broke the spec."""
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            fake = cls(mock, base_url, strict=strict)
            yield fake
            fake.assert_clean()

    @classmethod
    @contextmanager
    def served(cls, *, strict: bool = True) -> Iterator[DiscordFake]:
        """The same fake on a loopback HTTP server, for functions running as processes."""
        import http.server

        import requests

        fake: DiscordFake | None = None

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                prepared = requests.Request(
                    self.command,
                    base + self.path[len(prefix) :],
                    headers=dict(self.headers),
                    data=self.rfile.read(length) or None,
                ).prepare()
                assert fake is not None
                with fake._lock:
                    status, headers, text = fake._handle(prepared)
                payload = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        prefix = "/api/v10"
        base = DISCORD_API
        fake = cls.__new__(cls)
        fake._setup(base, strict)
        with serving(server) as port:
            fake.url = f"http://127.0.0.1:{port}{prefix}"
            yield fake
        fake.assert_clean()

    # -- scripting ----------------------------------------------------------------------------

    def queue(
        self, status: int = 200, body: Any = None, headers: dict[str, str] | None = None
    ) -> DiscordFake:
        """Answer the next unanswered request with this (body None: the route's default)."""
        self._answers.append(Answer(status, body, dict(headers or {})))
        return self

    def queue_error(self, error: Exception) -> DiscordFake:
        """Make the next request fail with `error`, e.g. requests.ConnectionError()."""
        self._answers.append(Answer(error=error))
        return self

    def queue_rate_limit(self, retry_after: float, *, header_only: bool = False) -> DiscordFake:
        """A 429 as Discord sends it: JSON body and Retry-After header (or the header alone)."""
        headers = {"Retry-After": f"{retry_after:g}", "X-RateLimit-Scope": "user"}
        body = {
            "message": "You are being rate limited.",
            "retry_after": retry_after,
            "global": False,
        }
        return self.queue(429, "" if header_only else body, headers)

    @property
    def pending(self) -> int:
        """Scripted answers not yet used."""
        return len(self._answers)

    # -- reading ------------------------------------------------------------------------------

    def to(self, method: str, route: str) -> list[SentRequest]:
        """Requests sent to one operation, e.g. to("POST", "/channels/{channel_id}/messages")."""
        return [r for r in self.requests if r.method == method.upper() and r.route == route]

    def operations(self) -> list[str]:
        return [r.operation for r in self.requests]

    def assert_clean(self) -> None:
        assert not self.violations, "requests that Discord would refuse:\n" + "\n".join(
            self.violations
        )

    # -- the fake server ------------------------------------------------------------------------

    def _handle(self, request: PreparedRequest) -> tuple[int, dict[str, str], str]:
        url = request.url or ""
        method = (request.method or "GET").upper()
        split = urlsplit(url)
        path = split.path[len(urlsplit(self.base_url).path) :]
        headers = CaseInsensitiveDict(request.headers)
        try:
            body = _decode(request.body)
            route, params = assert_discord_request(
                method, path, parse_qs(split.query), headers, body
            )
            agent = headers.get("User-Agent", "")
            assert _USER_AGENT_RE.fullmatch(agent), f"User-Agent {agent!r} is not DiscordBot"
            if self.strict and discord_allows_anonymous(method, route):
                assert "Authorization" not in headers, f"{method} {route} sent Authorization"
        except AssertionError as err:
            # Record it, then answer as Discord would, so the failure shows even if swallowed.
            self.violations.append(f"{method} {path}: {err}")
            self.requests.append(SentRequest(method, "?", {}, {}, headers, None, url))
            return 400, {"Content-Type": "application/json"}, _invalid_form_body()
        self.requests.append(
            SentRequest(method, route, params, parse_qs(split.query), headers, body, url)
        )
        answer = self._answers.popleft() if self._answers else Answer()
        if answer.error is not None:
            raise answer.error
        reply_headers = {"Content-Type": "application/json", **answer.headers}
        if answer.body is None and 200 <= answer.status < 300:
            return self._default(method, route, params, body, reply_headers, answer.status)
        payload = answer.body
        if payload is None:  # an error without a scripted body: Discord's usual shape
            payload = {"message": HTTPStatus(answer.status).phrase, "code": 0}
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return answer.status, reply_headers, text

    def _default(
        self,
        method: str,
        route: str,
        params: dict[str, str],
        body: Any,
        headers: dict[str, str],
        status: int,
    ) -> tuple[int, dict[str, str], str]:
        spec, _ = _discord()
        responses_ = spec["paths"][route][method.lower()]["responses"]
        ok = responses_.get("200", {}).get("content", {}).get("application/json", {})
        if (method, route) == ("POST", _CHANNEL_MESSAGES):
            return status, headers, json.dumps(self._channel_post(params, body))
        if ok.get("schema", {}).get("$ref", "").endswith("/MessageResponse"):
            return status, headers, json.dumps(self.message(params, body))
        if "204" in responses_ and "200" not in responses_:
            return 204, {}, ""
        return status, headers, "{}"

    def _channel_post(self, params: dict[str, str], body: Any) -> dict[str, Any]:
        """The message a channel post made, or with enforce_nonce the one its nonce made."""
        sent = body if isinstance(body, dict) else {}
        now, nonce = self.clock(), sent.get("nonce")
        key = (params.get("channel_id", CHANNEL), str(nonce))
        enforced = sent.get("enforce_nonce") is True and nonce is not None
        with self._nonce_lock:
            if enforced and key in self._nonces:
                earlier, at = self._nonces[key]
                if now - at < DISCORD_NONCE_SECONDS:
                    return earlier
            message = self.message(params, body)
            self.channel_messages.append(message)
            if enforced:
                self._nonces[key] = (message, now)
        return message

    def message(self, params: dict[str, str], body: Any) -> dict[str, Any]:
        """A message object as Discord returns it after a create or edit."""
        sent = body if isinstance(body, dict) else {}
        webhook_id = params.get("webhook_id")
        message: dict[str, Any] = {
            # An edit of a channel message keeps that message's ID.
            "id": params.get("message_id") or str(next(self._ids)),
            "type": 0,
            "channel_id": params.get("channel_id", CHANNEL),
            "content": sent.get("content") or "",
            "author": {
                "id": webhook_id or APP,
                "username": "facteur",
                "avatar": None,
                "discriminator": "0000",
                "public_flags": 0,
                "flags": 0,
                "global_name": None,
                "primary_guild": None,
                "bot": True,
            },
            "attachments": [],
            "embeds": sent.get("embeds") or [],
            "components": sent.get("components") or [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": "2025-01-01T00:00:00.000000+00:00",
            "edited_timestamp": None,
            "flags": sent.get("flags") or 0,
        }
        if webhook_id:
            message["webhook_id"] = webhook_id
            message["application_id"] = webhook_id
        if sent.get("nonce") is not None:
            message["nonce"] = sent["nonce"]
        return message


def _decode(raw: bytes | str | None) -> Any:
    if raw is None or raw in (b"", ""):
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError("body is not JSON") from None


def _invalid_form_body() -> str:
    return json.dumps({"code": 50035, "message": "Invalid Form Body (fake: see violations)"})


@pytest.fixture
def discord_fake() -> Iterator[DiscordFake]:
    """A DiscordFake at https://discord.com/api/v10; import it into a conftest to share it."""
    with DiscordFake.running() as fake:
        yield fake
