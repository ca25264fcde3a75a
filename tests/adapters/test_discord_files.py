"""Follow-ups with files (multipart/form-data), and the fake's checks of uploads and components.

Discord's contract: the spec's multipart/form-data body of POST /webhooks/{id}/{token}, a
`payload_json` part holding the message, which declares each `files[n]` in `attachments`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses

from facteur.adapters.discord import DiscordClient, user_agent
from facteur.decisions.interactions import ATTACHMENT_LIMIT, MAX_ATTACHMENTS, Attachment
from facteur.errors import DiscordError
from tests.adapters import test_discord as base
from tests.helpers.discord_fake import DISCORD_API, DiscordFake, SentFile, SentRequest
from tests.helpers.support import APP

# The client's fixtures and helpers, used here as they are.
TOKEN, BOT_TOKEN, FOLLOW_UP = base.TOKEN, base.BOT_TOKEN, base.FOLLOW_UP
Sleeps, make_client = base.Sleeps, base.make_client
discord, sleeps, client = base.discord, base.sleeps, base.client
WEBHOOK = f"{DISCORD_API}/webhooks/{APP}/{TOKEN}"
# Text with what a multipart encoder could get wrong: CRLFs, a boundary-like line, non-ASCII.
LOG_TEXT = "step 1: ok\r\nstep 2: failed\n--boundary\r\n\u00e9t\u00e9 \u2713\n".encode()
LOGS = Attachment("run-logs.txt", LOG_TEXT, description="Logs of run hello-x7k2p")


def received(sent: SentRequest) -> list[tuple[str, str, bytes, str]]:
    """The files of a request as Discord read them: part name, filename, bytes, type."""
    return [(f.field, f.filename, f.content, f.content_type) for f in sent.files]


# -- a follow-up with files ----------------------------------------------------------------


def test_a_text_file_arrives_intact_with_its_ephemeral_message(
    discord: DiscordFake, client: DiscordClient
) -> None:
    message = {"content": "Logs of the run.", "flags": 64}
    answer = client.follow_up(TOKEN, message, files=[LOGS])
    [sent] = discord.to(*FOLLOW_UP)
    assert sent.multipart
    assert sent.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert sent.params == {"webhook_id": APP, "webhook_token": TOKEN}
    assert "Authorization" not in sent.headers
    assert sent.json == {
        "content": "Logs of the run.",
        "flags": 64,
        "allowed_mentions": {"parse": []},
        "attachments": [
            {"id": "0", "filename": "run-logs.txt", "description": "Logs of run hello-x7k2p"}
        ],
    }
    assert received(sent) == [
        ("files[0]", "run-logs.txt", LOG_TEXT, "text/plain; charset=utf-8"),
    ]
    assert sent.file("run-logs.txt").text.startswith("step 1: ok\r\n")
    # Discord's answer names the uploaded file.
    [attachment] = answer["attachments"]
    assert attachment["filename"] == "run-logs.txt"
    assert attachment["size"] == len(LOG_TEXT)


def test_the_messages_mentions_are_enforced_with_files(
    discord: DiscordFake, client: DiscordClient
) -> None:
    message = {
        "content": "@everyone the logs",
        "allowed_mentions": {"parse": ["everyone", "users"], "users": []},
    }
    client.follow_up(TOKEN, message, files=[LOGS])
    [sent] = discord.to(*FOLLOW_UP)
    assert sent.json["allowed_mentions"] == {"parse": []}
    assert sent.json["content"] == "@everyone the logs"


def test_several_files_keep_their_order_bytes_and_types(
    discord: DiscordFake, client: DiscordClient
) -> None:
    binary = bytes(range(256)) * 4 + b"\r\n\r\n"
    files = [
        Attachment("a.txt", b"first\n"),
        Attachment("dump.bin", binary, content_type="application/octet-stream"),
        Attachment("result.json", b'{"ok": true}', content_type="application/json"),
    ]
    client.follow_up(TOKEN, {"content": "three files"}, files=files)
    [sent] = discord.to(*FOLLOW_UP)
    assert received(sent) == [
        ("files[0]", "a.txt", b"first\n", "text/plain; charset=utf-8"),
        ("files[1]", "dump.bin", binary, "application/octet-stream"),
        ("files[2]", "result.json", b'{"ok": true}', "application/json"),
    ]
    assert [(a["id"], a["filename"]) for a in sent.json["attachments"]] == [
        ("0", "a.txt"),
        ("1", "dump.bin"),
        ("2", "result.json"),
    ]


def test_what_the_caller_declared_of_a_file_is_kept(
    discord: DiscordFake, client: DiscordClient
) -> None:
    # MemoryDiscord's callers declare attachments by integer index; the wire takes a snowflake.
    declared = [{"id": 1, "description": "the second"}, {"id": 0, "filename": "a.txt"}]
    message = {"content": "two", "attachments": declared}
    files = [Attachment("a.txt", b"a"), Attachment("b.txt", b"b", description="unused")]
    client.follow_up(TOKEN, message, files=files)
    [sent] = discord.to(*FOLLOW_UP)
    assert sent.json["attachments"] == [
        {"id": "0", "filename": "a.txt"},
        {"id": "1", "filename": "b.txt", "description": "the second"},
    ]
    # The caller's message is left as it was.
    assert message["attachments"] == [
        {"id": 1, "description": "the second"},
        {"id": 0, "filename": "a.txt"},
    ]
    assert "allowed_mentions" not in message


def test_a_file_of_exactly_the_limit_is_sent(discord: DiscordFake, client: DiscordClient) -> None:
    big = Attachment("big.log", b"x" * ATTACHMENT_LIMIT)
    client.follow_up(TOKEN, {"content": "big"}, files=[big])
    [sent] = discord.to(*FOLLOW_UP)
    assert len(sent.file("big.log").content) == ATTACHMENT_LIMIT


def test_a_session_content_type_does_not_override_the_multipart_one(
    discord: DiscordFake,
) -> None:
    session = requests.Session()
    session.headers["Content-Type"] = "application/json"
    client = make_client(Sleeps(), session=session)
    client.follow_up(TOKEN, {"content": "logs"}, files=[LOGS])
    [sent] = discord.to(*FOLLOW_UP)
    assert sent.multipart
    assert received(sent)[0][2] == LOG_TEXT


# -- retries send the whole body again -------------------------------------------------------


def test_a_429_then_a_503_then_success_resends_the_same_multipart_body(
    discord: DiscordFake, client: DiscordClient, sleeps: Sleeps
) -> None:
    discord.queue_rate_limit(0.25).queue(503)
    files = [LOGS, Attachment("dump.bin", b"\x00\x01\xff" * 100, "application/octet-stream")]
    answer = client.follow_up(TOKEN, {"content": "logs", "flags": 64}, files=files)
    attempts = discord.to(*FOLLOW_UP)
    assert len(attempts) == 3
    first = attempts[0]
    assert len(first.files) == 2 and first.files[1].content == b"\x00\x01\xff" * 100
    for again in attempts[1:]:
        assert again.json == first.json
        assert received(again) == received(first)
    assert sleeps[0] == 0.25 and len(sleeps) == 2
    assert [a["filename"] for a in answer["attachments"]] == ["run-logs.txt", "dump.bin"]


def test_a_connection_error_is_retried_with_the_files(
    discord: DiscordFake, client: DiscordClient
) -> None:
    discord.queue_error(requests.ConnectionError("reset"))
    client.follow_up(TOKEN, {"content": "logs"}, files=[LOGS])
    attempts = discord.to(*FOLLOW_UP)
    assert len(attempts) == 2
    assert received(attempts[1]) == received(attempts[0])
    assert received(attempts[1])[0][2] == LOG_TEXT


def test_a_refused_upload_keeps_the_token_out_of_the_error(
    discord: DiscordFake, client: DiscordClient
) -> None:
    discord.queue(400, {"code": 50035, "message": f"Invalid Form Body for {TOKEN}"})
    with pytest.raises(DiscordError) as caught:
        client.follow_up(TOKEN, {"content": "logs"}, files=[LOGS])
    assert caught.value.status == 400
    assert TOKEN not in str(caught.value)
    assert len(discord.requests) == 1  # a 400 is not retried


# -- what is refused before anything is sent ----------------------------------------------------


def _files(count: int) -> list[Attachment]:
    return [Attachment(f"f{n}.txt", b"x") for n in range(count)]


REFUSED: dict[str, tuple[list[Attachment], dict[str, Any]]] = {
    "too many files": (_files(MAX_ATTACHMENTS + 1), {}),
    "too large": ([Attachment("big.log", b"x" * (ATTACHMENT_LIMIT + 1))], {}),
    "a path": ([Attachment("../etc/passwd", b"x")], {}),
    "a space": ([Attachment("run logs.txt", b"x")], {}),
    "a quote": ([Attachment('a".txt', b"x")], {}),
    "a line break": ([Attachment("a\r\nX-Evil: 1", b"x")], {}),
    "non-ascii": ([Attachment("\u00e9t\u00e9.txt", b"x")], {}),
    "empty": ([Attachment("", b"x")], {}),
    "dots only": ([Attachment("..", b"x")], {}),
    "too long": ([Attachment("a" * 101, b"x")], {}),
    "a content type with a header": ([Attachment("a.txt", b"x", "text/plain\r\nX: 1")], {}),
    "content that is not bytes": ([Attachment("a.txt", "text")], {}),  # type: ignore[arg-type]
    "a declared file not sent": (_files(1), {"attachments": [{"id": 1}]}),
    "a file declared twice": (_files(1), {"attachments": [{"id": 0}, {"id": "0"}]}),
    "a file declared under another name": (
        _files(1),
        {"attachments": [{"id": 0, "filename": "other.txt"}]},
    ),
}


@pytest.mark.parametrize("files, extra", list(REFUSED.values()), ids=list(REFUSED))
def test_what_discord_would_refuse_or_facteur_must_not_send_is_never_sent(
    discord: DiscordFake, client: DiscordClient, files: list[Attachment], extra: dict[str, Any]
) -> None:
    with pytest.raises(DiscordError) as caught:
        client.follow_up(TOKEN, {"content": "logs", **extra}, files=files)
    assert caught.value.status is None
    assert discord.requests == []


def test_exactly_max_attachments_files_are_sent(
    discord: DiscordFake, client: DiscordClient
) -> None:
    client.follow_up(TOKEN, {"content": "ten"}, files=_files(MAX_ATTACHMENTS))
    [sent] = discord.to(*FOLLOW_UP)
    assert [f.index for f in sent.files] == list(range(MAX_ATTACHMENTS))


# -- without files: JSON as ever -------------------------------------------------------------------


@pytest.mark.parametrize("files", [None, ()], ids=["no argument", "empty"])
def test_a_follow_up_without_files_is_still_json(
    discord: DiscordFake, client: DiscordClient, files: tuple[Attachment, ...] | None
) -> None:
    message = {"content": "Still running.", "flags": 64}
    if files is None:
        client.follow_up(TOKEN, message)
    else:
        client.follow_up(TOKEN, message, files=files)
    [sent] = discord.to(*FOLLOW_UP)
    assert not sent.multipart
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.json == {
        "content": "Still running.",
        "flags": 64,
        "allowed_mentions": {"parse": []},
    }
    assert sent.files == ()


def test_files_reach_the_served_fake_over_real_http() -> None:
    with DiscordFake.served() as discord:
        client = make_client(Sleeps(), api_base_url=discord.url)
        client.follow_up(TOKEN, {"content": "logs"}, files=[LOGS])
        [sent] = discord.to(*FOLLOW_UP)
        assert received(sent) == [
            ("files[0]", "run-logs.txt", LOG_TEXT, "text/plain; charset=utf-8")
        ]
        assert sent.json["attachments"][0]["id"] == "0"


# -- the fake refuses the uploads Discord would -------------------------------------------------

HEADERS = {"User-Agent": user_agent()}


def _payload(**extra: Any) -> tuple[None, str, str]:
    message = {"content": "hi", "allowed_mentions": {"parse": []}, **extra}
    return (None, json.dumps(message), "application/json")


ONE_FILE = {"attachments": [{"id": "0", "filename": "a.txt"}]}
BAD_UPLOADS: dict[str, list[tuple[str, Any]]] = {
    "a file not declared": [("payload_json", _payload()), ("files[0]", ("a.txt", b"x"))],
    "a declared file not sent": [("payload_json", _payload(**ONE_FILE))],
    "a file without a filename": [
        ("payload_json", _payload(**ONE_FILE)),
        ("files[0]", (None, b"x", "text/plain")),
    ],
    "no payload_json": [("files[0]", ("a.txt", b"x"))],
    "payload_json that is not JSON": [
        ("payload_json", (None, "{nope", "application/json")),
        ("files[0]", ("a.txt", b"x")),
    ],
    "a part named otherwise": [("payload_json", _payload(**ONE_FILE)), ("file", ("a.txt", b"x"))],
    "files[10]": [
        ("payload_json", _payload(attachments=[{"id": "10", "filename": "a.txt"}])),
        ("files[10]", ("a.txt", b"x")),
    ],
    "a filename other than declared": [
        ("payload_json", _payload(**ONE_FILE)),
        ("files[0]", ("b.txt", b"x")),
    ],
    "an unknown key in payload_json": [
        ("payload_json", _payload(contnet="typo", **ONE_FILE)),
        ("files[0]", ("a.txt", b"x")),
    ],
    "an attachment id that is no snowflake": [
        ("payload_json", _payload(attachments=[{"id": "zero", "filename": "a.txt"}])),
        ("files[0]", ("a.txt", b"x")),
    ],
}


def test_the_fake_accepts_a_well_formed_upload() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = DiscordFake(mock)
        parts: list[tuple[str, Any]] = [
            ("payload_json", _payload(**ONE_FILE)),
            ("files[0]", ("a.txt", b"x")),
        ]
        answer = requests.post(WEBHOOK, files=parts, headers=HEADERS, timeout=5)
        assert answer.status_code == 200, fake.violations
        [sent] = fake.requests
        assert sent.files == (SentFile("files[0]", "a.txt", b"x", ""),)


@pytest.mark.parametrize("parts", list(BAD_UPLOADS.values()), ids=list(BAD_UPLOADS))
def test_the_fake_refuses_a_malformed_upload(parts: list[tuple[str, Any]]) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = DiscordFake(mock)
        answer = requests.post(WEBHOOK, files=parts, headers=HEADERS, timeout=5)
        assert answer.status_code == 400
        assert answer.json()["code"] == 50035
        assert len(fake.violations) == 1
        with pytest.raises(AssertionError):
            fake.assert_clean()


def test_the_fake_refuses_multipart_where_the_spec_takes_none() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = DiscordFake(mock)
        bot = {**HEADERS, "Authorization": f"Bot {BOT_TOKEN}"}
        parts = [("payload_json", (None, '{"archived": true}', "application/json"))]
        url = f"{DISCORD_API}/channels/800000000000000200"  # PATCH a channel: JSON only
        answer = requests.patch(url, files=parts, headers=bot, timeout=5)
        assert answer.status_code == 400
        assert "takes no multipart/form-data" in fake.violations[0]


# -- message components: a string select menu -------------------------------------------------


def _select(**overrides: Any) -> dict[str, Any]:
    select: dict[str, Any] = {
        "type": 3,
        "custom_id": "facteur:pick:env",
        "placeholder": "Environment",
        "options": [
            {"label": "Staging", "value": "staging", "description": "the test cluster"},
            {"label": "Production", "value": "production"},
        ],
        "min_values": 1,
        "max_values": 2,
    }
    select.update(overrides)
    return select


def _rows(*components: dict[str, Any]) -> dict[str, Any]:
    return {"content": "Pick one", "components": [{"type": 1, "components": list(components)}]}


def test_a_select_menu_message_validates(discord: DiscordFake, client: DiscordClient) -> None:
    button = {"type": 2, "style": 2, "custom_id": "facteur:cancel", "label": "Cancel"}
    message = {
        "content": "Pick one",
        "flags": 64,
        "components": [
            {"type": 1, "components": [_select()]},
            {"type": 1, "components": [button]},
        ],
    }
    client.follow_up(TOKEN, message)
    [sent] = discord.to(*FOLLOW_UP)
    assert sent.json["components"][0]["components"][0] == _select()


def test_a_select_menu_validates_alongside_a_file(
    discord: DiscordFake, client: DiscordClient
) -> None:
    client.follow_up(TOKEN, _rows(_select()), files=[LOGS])
    [sent] = discord.to(*FOLLOW_UP)
    assert sent.json["components"][0]["components"][0]["options"][1]["value"] == "production"
    assert received(sent)[0][1] == "run-logs.txt"


def _options(count: int) -> list[dict[str, str]]:
    return [{"label": f"Option {n}", "value": f"v{n}"} for n in range(count)]


BUTTON = {"type": 2, "style": 1, "custom_id": "b", "label": "B"}
BAD_MENUS: dict[str, dict[str, Any]] = {
    "26 options": _rows(_select(options=_options(26), max_values=25)),
    "an option without value": _rows(_select(options=[{"label": "Staging"}], max_values=1)),
    "an option with an empty value": _rows(
        _select(options=[{"label": "Staging", "value": ""}], max_values=1)
    ),
    "no custom_id": _rows({k: v for k, v in _select().items() if k != "custom_id"}),
    "no options": _rows(_select(options=[], max_values=1)),
    "max_values over 25": _rows(_select(options=_options(25), max_values=26)),
    "max_values over the options": _rows(_select(max_values=3)),
    "min_values over max_values": _rows(_select(min_values=2, max_values=1)),
    "repeated values": _rows(
        _select(options=[{"label": "A", "value": "x"}, {"label": "B", "value": "x"}])
    ),
    "an unknown option key": _rows(
        _select(options=[{"label": "A", "value": "a", "colour": "red"}], max_values=1)
    ),
    "a select sharing its row": _rows(_select(), BUTTON),
    "a select outside an action row": {"content": "x", "components": [_select()]},
    "a button with select keys": _rows({**BUTTON, "options": _options(2)}),
    # Keys of a string select, valid by the spec's oneOf, but not on a user select.
    "options on a user select": _rows({"type": 5, "custom_id": "who", "options": _options(2)}),
    "six action rows": {
        "content": "x",
        "components": [{"type": 1, "components": [BUTTON]} for _ in range(6)],
    },
}


@pytest.mark.parametrize("message", list(BAD_MENUS.values()), ids=list(BAD_MENUS))
def test_the_fake_refuses_a_malformed_select_menu(message: dict[str, Any]) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = DiscordFake(mock)
        body = {**message, "allowed_mentions": {"parse": []}}
        answer = requests.post(WEBHOOK, json=body, headers=HEADERS, timeout=5)
        assert answer.status_code == 400, body
        assert len(fake.violations) == 1
        with pytest.raises(AssertionError):
            fake.assert_clean()
