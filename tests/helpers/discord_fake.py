"""A fake of Discord's REST API on `responses`: every request is checked against the real spec.

Use it as a context manager (or through the `discord_fake` fixture):

    with DiscordFake.running() as discord:
        discord.queue(429, {"message": "slow down", "retry_after": 0.5, "global": False})
        ...code under test...
        [sent] = discord.to("POST", "/channels/{channel_id}/messages")

Each request must name an operation in Discord's OpenAPI spec (method and path), carry path
parameters that fit their schemas, send a JSON body that fits the operation's request schema
with no unknown keys, carry `Bot` auth where the spec requires it and none where it does not,
and send Discord's `DiscordBot (url, version)` User-Agent. A multipart/form-data request (a
message with files) must fit the operation's multipart schema: `payload_json` holds the message,
checked like a JSON body, and each `files[n]` part has a filename and is declared by its index in
the message's `attachments`; the files land in `SentRequest.files`. Message components are
checked by their type, with Discord's layout rules (5 action rows, one select per row, select
options and value counts). A request that breaks a rule is
answered 400 and recorded in `violations`; leaving `running()` asserts there were none, so code
that swallows errors cannot hide a bad request.

Answers: scripted ones from `queue()`/`queue_error()` first (in order, whatever the route), then
a default success shaped like Discord's (a full message object for message routes). A channel
post with `enforce_nonce` and the nonce of one created in that channel less than
DISCORD_NONCE_SECONDS ago is answered, as Discord does, with that message, and creates none
(`channel_messages` holds those created). Once an interaction's original reply is deleted
(DELETE …/messages/@original, answered 204), Discord answers a later edit or delete of it 404
Unknown Message (code 10008); `deleted_originals` holds those interaction tokens.
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
from email import policy
from email.message import Message
from email.parser import BytesParser
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from requests import PreparedRequest
from requests.structures import CaseInsensitiveDict

from tests.helpers.contracts import (
    _discord,
    assert_discord_request,
    discord_allows_anonymous,
    discord_operation,
    match_discord_path,
)
from tests.helpers.fakes import DISCORD_NONCE_SECONDS
from tests.helpers.servers import serving
from tests.helpers.support import APP, CHANNEL

DISCORD_API = "https://discord.com/api/v10"
ORIGINAL = "/webhooks/{webhook_id}/{webhook_token}/messages/@original"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_USER_AGENT_RE = re.compile(r"DiscordBot \(\S+, \S+\)")
_CHANNEL_MESSAGES = "/channels/{channel_id}/messages"
_MULTIPART = "multipart/form-data"
_FILE_FIELD = re.compile(r"files\[(0|[1-9][0-9]*)\]")
# Discord's default upload limit per file (PLATFORM-FACTS: 10 MiB each by default).
DISCORD_FILE_LIMIT = 10 * 1024 * 1024
# Message flag IS_COMPONENTS_V2: without it, components are action rows only.
_COMPONENTS_V2 = 1 << 15
_ACTION_ROW, _BUTTON, _STRING_SELECT = 1, 2, 3
_SELECTS = frozenset({3, 5, 6, 7, 8})


@dataclass(frozen=True)
class SentFile:
    """One `files[n]` part of a multipart request, as Discord received it."""

    field: str  # the part's name, e.g. "files[0]"
    filename: str
    content: bytes
    content_type: str  # the part's Content-Type header as sent ("" when it had none)

    @property
    def index(self) -> int:
        """n of files[n]: the `id` the message's `attachments` declares it by."""
        return int(self.field[len("files[") : -1])

    @property
    def text(self) -> str:
        return self.content.decode()


@dataclass(frozen=True)
class SentRequest:
    """One request as Discord received it."""

    method: str
    route: str  # the spec's path template, e.g. /channels/{channel_id}/messages
    params: dict[str, str]  # path parameters, decoded
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # case-insensitive
    json: Any  # decoded body (a multipart request's payload_json), None when there was none
    url: str
    files: tuple[SentFile, ...] = ()  # a multipart request's files[n] parts, in order

    @property
    def operation(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def multipart(self) -> bool:
        return _media_type(self.headers.get("Content-Type", "")) == _MULTIPART

    def file(self, filename: str) -> SentFile:
        """The file sent under this filename."""
        [found] = [f for f in self.files if f.filename == filename]
        return found


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
        # Interaction tokens whose original reply was deleted.
        self.deleted_originals: set[str] = set()
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
        headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(
            {k: v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
        )
        files: tuple[SentFile, ...] = ()
        try:
            raw = request.body
            assert raw is None or isinstance(raw, (bytes, str)), "the body is a stream"
            checked: Mapping[str, str] = headers
            multipart = _media_type(headers.get("Content-Type", "")) == _MULTIPART
            if multipart:
                body, files = _read_multipart(method, path, headers["Content-Type"], raw)
                # payload_json is the JSON body the operation takes (_read_multipart made sure
                # the schemas agree): the spec's JSON checks then apply to it as they stand.
                checked = CaseInsensitiveDict({**headers, "Content-Type": "application/json"})
            else:
                body = _decode(raw)
            route, params = assert_discord_request(
                method, path, parse_qs(split.query), checked, body
            )
            if multipart:
                # After the schema checks, so `attachments` holds snowflakes by then.
                _assert_declared(method, body, files)
            _assert_components(body)
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
            SentRequest(method, route, params, parse_qs(split.query), headers, body, url, files)
        )
        answer = self._answers.popleft() if self._answers else Answer()
        if answer.error is not None:
            raise answer.error
        if route == ORIGINAL and 200 <= answer.status < 300 and answer.body is None:
            gone = self._original(method, params["webhook_token"])
            if gone is not None:
                return gone
        reply_headers = {"Content-Type": "application/json", **answer.headers}
        if answer.body is None and 200 <= answer.status < 300:
            return self._default(method, route, params, body, reply_headers, answer.status, files)
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
        files: tuple[SentFile, ...] = (),
    ) -> tuple[int, dict[str, str], str]:
        spec, _ = _discord()
        responses_ = spec["paths"][route][method.lower()]["responses"]
        ok = responses_.get("200", {}).get("content", {}).get("application/json", {})
        if (method, route) == ("POST", _CHANNEL_MESSAGES):
            return status, headers, json.dumps(self._channel_post(params, body))
        if ok.get("schema", {}).get("$ref", "").endswith("/MessageResponse"):
            return status, headers, json.dumps(self.message(params, body, files))
        if "204" in responses_ and "200" not in responses_:
            return 204, {}, ""
        return status, headers, "{}"

    def _original(self, method: str, token: str) -> tuple[int, dict[str, str], str] | None:
        """A deleted original reply stays gone: Discord's 404 for it; None while it stands."""
        with self._nonce_lock:
            if token in self.deleted_originals:
                body = {"message": "Unknown Message", "code": 10008}
                return 404, {"Content-Type": "application/json"}, json.dumps(body)
            if method == "DELETE":
                self.deleted_originals.add(token)
        return None

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

    def message(
        self, params: dict[str, str], body: Any, files: tuple[SentFile, ...] = ()
    ) -> dict[str, Any]:
        """A message object as Discord returns it after a create or edit."""
        sent = body if isinstance(body, dict) else {}
        declared = {str(a.get("id")): a for a in sent.get("attachments") or []}
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
            "attachments": [self._attachment(f, declared.get(str(f.index), {})) for f in files],
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

    def _attachment(self, file: SentFile, declared: Mapping[str, Any]) -> dict[str, Any]:
        """An attachment object as Discord returns it for an uploaded file."""
        attachment_id = str(next(self._ids))
        url = f"https://cdn.discordapp.com/attachments/{CHANNEL}/{attachment_id}/{file.filename}"
        attachment: dict[str, Any] = {
            "id": attachment_id,
            "filename": file.filename,
            "size": len(file.content),
            "url": url,
            "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
        }
        if file.content_type:
            attachment["content_type"] = file.content_type
        if declared.get("description") is not None:
            attachment["description"] = declared["description"]
        return attachment


def _decode(raw: bytes | str | None) -> Any:
    if raw is None or raw in (b"", ""):
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        return json.loads(text)
    except ValueError:
        raise AssertionError("body is not JSON") from None


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def _read_multipart(
    method: str, path: str, content_type: str, raw: bytes | str | None
) -> tuple[dict[str, Any], tuple[SentFile, ...]]:
    """The payload_json and files of a multipart request, checked against the operation's
    multipart schema and Discord's rules for uploads."""
    route, _ = match_discord_path(path)
    content = discord_operation(method, route).get("requestBody", {}).get("content", {})
    assert _MULTIPART in content, f"{method} {route} takes no {_MULTIPART} body"
    message_schema, file_fields = _multipart_schema(content[_MULTIPART]["schema"])
    # The fake checks payload_json with the JSON checks: only sound where the schemas agree.
    json_schema = content.get("application/json", {}).get("schema")
    assert message_schema == json_schema, f"fake: {method} {route} multipart differs from JSON"
    parts = _parts(content_type, raw)
    payload: dict[str, Any] | None = None
    files: list[SentFile] = []
    for part in parts:
        assert part.get_content_disposition() == "form-data", "a part is not form-data"
        name = part.get_param("name", header="content-disposition")
        assert isinstance(name, str) and name, "a part has no name"
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes), f"part {name!r} has no content"
        if name == "payload_json":
            assert payload is None, "payload_json is sent twice"
            assert part.get_filename() is None, "payload_json is sent as a file"
            kind = part.get_content_type() if part.get("Content-Type") else "application/json"
            assert kind == "application/json", f"payload_json is {kind!r}"
            try:
                payload = json.loads(data.decode())
            except ValueError:
                raise AssertionError("payload_json is not JSON") from None
            assert isinstance(payload, dict), "payload_json is not a JSON object"
            continue
        assert name in file_fields, f"part {name!r} is neither payload_json nor files[0..9]"
        filename = part.get_filename()
        assert filename, f"{name} has no filename"
        assert len(data) <= DISCORD_FILE_LIMIT, f"{name} is over Discord's upload limit"
        files.append(SentFile(name, filename, data, str(part.get("Content-Type") or "")))
    assert payload is not None, "a multipart message without payload_json"
    names = [f.field for f in files]
    assert len(set(names)) == len(names), f"a files[n] part is sent twice: {names}"
    return payload, tuple(files)


def _multipart_schema(schema: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The message part of a multipart schema, and the names of its binary file fields.

    Discord's spec writes it as allOf [message schema, {files[0]..files[9]: binary}], or as the
    message schema alone (execute_webhook): Discord's docs (Uploading Files) give every message
    route files[n] anyway, so then files[0..9] are taken.
    """
    members = schema.get("allOf") or [schema]
    fields: set[str] = set()
    message: list[dict[str, Any]] = []
    for member in members:
        properties = member.get("properties") if "$ref" not in member else None
        if properties and all(p.get("contentEncoding") == "binary" for p in properties.values()):
            fields.update(properties)
        else:
            message.append(member)
    assert len(message) == 1, "fake: a multipart schema it does not understand"
    return message[0], fields or {f"files[{n}]" for n in range(10)}


def _parts(content_type: str, raw: bytes | str | None) -> list[Message]:
    """A multipart/form-data body split into its parts, with the request's boundary."""
    data = raw.encode() if isinstance(raw, str) else raw or b""
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    # compat32 keeps each part's headers as sent (no re-quoting of parameters).
    whole = BytesParser(policy=policy.compat32).parsebytes(header + data)
    assert whole.get_param("boundary"), "a multipart Content-Type without a boundary"
    assert whole.is_multipart() and not whole.defects, (
        f"a malformed multipart body: {whole.defects}"
    )
    parts = whole.get_payload()
    assert isinstance(parts, list) and parts, "a multipart body without parts"
    found = [part for part in parts if isinstance(part, Message)]
    assert len(found) == len(parts), "a multipart body with a part that is not one"
    return found


def _assert_declared(method: str, payload: dict[str, Any], files: tuple[SentFile, ...]) -> None:
    """Every file is declared in `attachments` by its index, under the filename it was sent with;
    a new message declares no attachment that it does not upload."""
    declared: dict[str, Mapping[str, Any]] = {}
    for entry in payload.get("attachments") or []:
        if isinstance(entry, dict):  # the schema check refuses anything else
            declared[str(entry.get("id"))] = entry
    for file in files:
        entry = declared.get(str(file.index))
        assert entry is not None, f"{file.field} is not declared in attachments"
        named = entry.get("filename")
        assert named in (None, file.filename), f"{file.field} is declared as {named!r}"
    if method == "POST":
        sent = {str(f.index) for f in files}
        assert set(declared) <= sent, f"attachments declares files not sent: {set(declared) - sent}"


def _component_schemas() -> dict[int, dict[str, Any]]:
    """Discord's request schema for each message component type, by type number."""
    spec, _ = _discord()
    found: dict[int, dict[str, Any]] = {}
    for name, schema in spec["components"]["schemas"].items():
        if name.endswith("ComponentForMessageRequest"):
            for kind in schema["properties"]["type"].get("enum", []):
                found[kind] = schema
    return found


def _assert_components(body: Any) -> None:
    """Components checked by their own type's schema, then Discord's layout rules.

    The spec's oneOf lets a component borrow keys of another type's schema (the strict walk
    picks the branch by keys, not by type); a component's type decides here.
    """
    if not isinstance(body, dict) or not isinstance(body.get("components"), list):
        return
    schemas = _component_schemas()
    _assert_component_keys(body["components"], schemas, "components")
    flags = body.get("flags")
    if isinstance(flags, int) and flags & _COMPONENTS_V2:
        return
    rows = body["components"]
    assert len(rows) <= 5, f"{len(rows)} action rows: at most 5 without Components V2"
    for r, row in enumerate(rows):
        assert row.get("type") == _ACTION_ROW, f"components[{r}] is not an action row"
        items = row.get("components") or []
        selects = [c for c in items if c.get("type") in _SELECTS]
        if selects:
            assert len(items) == 1, f"components[{r}]: a select menu must be alone in its row"
        for c, item in enumerate(items):
            if item.get("type") == _STRING_SELECT:
                _assert_string_select(item, f"components[{r}].components[{c}]")


def _assert_component_keys(
    items: list[Any], schemas: dict[int, dict[str, Any]], where: str
) -> None:
    for index, item in enumerate(items):
        here = f"{where}[{index}]"
        if not isinstance(item, dict):
            continue  # the schema check has refused it already
        schema = schemas.get(item.get("type"))  # type: ignore[arg-type]
        assert schema is not None, f"{here}: no message component of type {item.get('type')!r}"
        unknown = set(item) - set(schema["properties"])
        assert not unknown, f"{here}: keys not in a type {item['type']} component: {unknown}"
        for key in ("components", "items"):
            if isinstance(item.get(key), list) and key in schema["properties"]:
                nested = item[key]
                if key == "components" or all("type" in i for i in nested if isinstance(i, dict)):
                    _assert_component_keys(nested, schemas, f"{here}.{key}")
        accessory = item.get("accessory")
        if isinstance(accessory, dict):
            _assert_component_keys([accessory], schemas, f"{here}.accessory")


def _assert_string_select(select: dict[str, Any], where: str) -> None:
    """What the spec cannot say of a string select: unique values, and counts that fit."""
    options = select.get("options") or []
    values = [o.get("value") for o in options if isinstance(o, dict)]
    assert len(set(values)) == len(values), f"{where}: option values repeat"
    low = select.get("min_values")
    high = select.get("max_values")
    low = 1 if low is None else low
    high = 1 if high is None else high
    assert low <= high, f"{where}: min_values {low} is over max_values {high}"
    assert high <= len(options), f"{where}: max_values {high} is over its {len(options)} options"
    defaults = [o for o in options if isinstance(o, dict) and o.get("default")]
    assert len(defaults) <= high, f"{where}: more default options than max_values"


def _invalid_form_body() -> str:
    return json.dumps({"code": 50035, "message": "Invalid Form Body (fake: see violations)"})


@pytest.fixture
def discord_fake() -> Iterator[DiscordFake]:
    """A DiscordFake at https://discord.com/api/v10; import it into a conftest to share it."""
    with DiscordFake.running() as fake:
        yield fake
