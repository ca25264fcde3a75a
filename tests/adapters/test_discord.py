"""facteur.adapters.discord against a fake Discord that checks requests with the OpenAPI spec."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
import requests
import responses

from facteur.adapters.discord import DiscordClient, user_agent
from facteur.decisions.journey import Delivered, ReplyTo
from facteur.errors import DiscordError, TokenRejected
from tests.helpers.contracts import assert_discord
from tests.helpers.discord_fake import DISCORD_API, DiscordFake
from tests.helpers.support import APP, CHANNEL, USER

# Shaped like the real ones, and distinctive enough to grep for in logs.
TOKEN = "aW50ZXJhY3Rpb246OTAwMDAwMDAwMDAwMDAwMDAx-SECRET-itok"
BOT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAx.GbXyZ1.SECRET-bot-0123456789abcdef"
EDIT = ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
FOLLOW_UP = ("POST", "/webhooks/{webhook_id}/{webhook_token}")
CHANNEL_POST = ("POST", "/channels/{channel_id}/messages")
NOW = 1_700_000_000.0


class Sleeps(list[float]):
    """An injected sleep that only remembers how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def discord() -> Iterator[DiscordFake]:
    with DiscordFake.running() as fake:
        yield fake


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> DiscordClient:
    return make_client(sleeps)


def make_client(sleeps: Sleeps, **overrides: Any) -> DiscordClient:
    options: dict[str, Any] = {
        "api_base_url": DISCORD_API,
        "application_id": APP,
        "bot_token": BOT_TOKEN,
        "sleep": sleeps,
    }
    options.update(overrides)
    return DiscordClient(**options)


def send(client: DiscordClient, route: tuple[str, str], message: dict[str, Any]) -> dict:
    if route == EDIT:
        return client.edit_original(TOKEN, message)
    if route == FOLLOW_UP:
        return client.follow_up(TOKEN, message)
    return client.post_to_channel(CHANNEL, message)


ALL_ROUTES = pytest.mark.parametrize("route", [EDIT, FOLLOW_UP, CHANNEL_POST], ids=str)


# -- the three routes ------------------------------------------------------------------------


def test_edit_original_patches_the_deferred_reply(discord: DiscordFake, client) -> None:
    answer = client.edit_original(TOKEN, {"content": "Workflow submitted."})
    [sent] = discord.to(*EDIT)
    assert sent.params == {"webhook_id": APP, "webhook_token": TOKEN}
    assert sent.json == {"content": "Workflow submitted.", "allowed_mentions": {"parse": []}}
    assert "Authorization" not in sent.headers
    assert answer["content"] == "Workflow submitted."
    assert_discord(answer, "MessageResponse")  # the fake answers as Discord does


def test_follow_up_posts_on_the_interaction_webhook(discord: DiscordFake, client) -> None:
    answer = client.follow_up(TOKEN, {"content": "Still running.", "flags": 64})
    [sent] = discord.to(*FOLLOW_UP)
    assert sent.params == {"webhook_id": APP, "webhook_token": TOKEN}
    assert sent.json == {
        "content": "Still running.",
        "flags": 64,
        "allowed_mentions": {"parse": []},
    }
    assert "Authorization" not in sent.headers
    assert answer["id"]


def test_channel_post_authenticates_as_the_bot(discord: DiscordFake, client) -> None:
    answer = client.post_to_channel(CHANNEL, {"content": "Done."})
    [sent] = discord.to(*CHANNEL_POST)
    assert sent.params == {"channel_id": CHANNEL}
    assert sent.headers["Authorization"] == f"Bot {BOT_TOKEN}"
    assert sent.json["content"] == "Done."
    assert sent.json["allowed_mentions"] == {"parse": []}
    # A nonce Discord enforces, so a retried POST cannot post twice.
    assert sent.json["enforce_nonce"] is True and 0 < len(sent.json["nonce"]) <= 25
    assert answer["channel_id"] == CHANNEL


@ALL_ROUTES
def test_every_request_names_facteur_in_the_user_agent(
    discord: DiscordFake, client, route: tuple[str, str]
) -> None:
    send(client, route, {"content": "hi"})
    [sent] = discord.requests
    expected = f"DiscordBot (https://github.com/facteur-dev/facteur, {version('facteur')})"
    assert sent.headers["User-Agent"] == expected == user_agent()
    assert sent.headers["Content-Type"] == "application/json"


def test_a_session_default_authorization_never_reaches_a_webhook(discord: DiscordFake) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bot {BOT_TOKEN}"
    client = make_client(Sleeps(), session=session)
    client.edit_original(TOKEN, {"content": "hi"})
    [sent] = discord.requests
    assert "Authorization" not in sent.headers


# -- mentions and limits ---------------------------------------------------------------------


@ALL_ROUTES
def test_allowed_mentions_are_forced_whatever_the_caller_asks(
    discord: DiscordFake, client, route: tuple[str, str]
) -> None:
    asked = {"parse": ["everyone", "roles", "users"], "roles": ["800000000000000010"]}
    send(client, route, {"content": "hello", "allowed_mentions": asked})
    [sent] = discord.requests
    assert sent.json["allowed_mentions"] == {"parse": []}


@ALL_ROUTES
def test_everyone_in_user_text_pings_nobody(
    discord: DiscordFake, client, route: tuple[str, str]
) -> None:
    text = "objective: @everyone @here <@&800000000000000010> <@800000000000000100>"
    send(client, route, {"content": text})
    [sent] = discord.requests
    assert sent.json["content"] == text  # shown as typed...
    assert sent.json["allowed_mentions"] == {"parse": []}  # ...but pings no one


@ALL_ROUTES
def test_content_is_clipped_to_discords_limit(
    discord: DiscordFake, client, route: tuple[str, str]
) -> None:
    send(client, route, {"content": "x" * 5000})
    [sent] = discord.requests
    assert len(sent.json["content"]) == 2000
    assert sent.json["content"].endswith("…")


def test_the_callers_message_is_not_modified(discord: DiscordFake, client) -> None:
    message = {"content": "hi", "allowed_mentions": {"parse": ["everyone"]}}
    client.post_to_channel(CHANNEL, message, mention_user_id=USER)
    assert message == {"content": "hi", "allowed_mentions": {"parse": ["everyone"]}}


# -- rate limits, server errors, refusals ----------------------------------------------------


def test_429_waits_retry_after_from_the_body_then_delivers_once(
    discord: DiscordFake, client, sleeps: Sleeps
) -> None:
    limited = {"message": "You are being rate limited.", "retry_after": 1.25, "global": False}
    discord.queue(429, limited, {"Retry-After": "2"})
    answer = client.edit_original(TOKEN, {"content": "hi"})
    assert sleeps == [1.25]  # the body's float wins over the header's rounded seconds
    assert len(discord.to(*EDIT)) == 2
    assert discord.pending == 0
    assert answer["content"] == "hi"


def test_429_falls_back_to_the_retry_after_header(
    discord: DiscordFake, client, sleeps: Sleeps
) -> None:
    discord.queue_rate_limit(2, header_only=True)
    client.post_to_channel(CHANNEL, {"content": "hi"})
    assert sleeps == [2.0]
    first, second = discord.to(*CHANNEL_POST)
    # Same nonce on the retry: Discord would hand back the first message, not post a second.
    assert first.json == second.json


def test_429_longer_than_max_wait_gives_up_without_waiting(
    discord: DiscordFake, client, sleeps: Sleeps
) -> None:
    discord.queue_rate_limit(60.0)
    with pytest.raises(DiscordError) as caught:
        client.edit_original(TOKEN, {"content": "hi"})
    assert caught.value.status == 429
    assert not isinstance(caught.value, TokenRejected)
    assert sleeps == []
    assert len(discord.requests) == 1


def test_waiting_is_bounded_in_total_not_only_per_429(
    discord: DiscordFake, client, sleeps: Sleeps
) -> None:
    for _ in range(3):
        discord.queue_rate_limit(6.0)
    with pytest.raises(DiscordError) as caught:
        client.follow_up(TOKEN, {"content": "hi"})
    assert caught.value.status == 429
    assert sleeps == [6.0, 6.0]  # a third wait would pass max_wait_seconds=15
    assert len(discord.requests) == 3


def test_503_twice_then_200_delivers_once(discord: DiscordFake, client, sleeps: Sleeps) -> None:
    discord.queue(503).queue(503)
    answer = client.edit_original(TOKEN, {"content": "hi"})
    assert len(discord.requests) == 3
    assert answer["content"] == "hi"
    # Exponential backoff with jitter: about 0.5 s, then about 1 s.
    assert len(sleeps) == 2
    assert 0.25 <= sleeps[0] <= 0.5
    assert 0.5 <= sleeps[1] <= 1.0


def test_server_errors_stop_after_max_attempts(discord: DiscordFake, sleeps: Sleeps) -> None:
    client = make_client(sleeps, max_attempts=3)
    for _ in range(5):
        discord.queue(502)
    with pytest.raises(DiscordError) as caught:
        client.post_to_channel(CHANNEL, {"content": "hi"})
    assert caught.value.status == 502
    assert len(discord.requests) == 3
    assert len(sleeps) == 2


def test_connection_errors_are_retried(discord: DiscordFake, client, sleeps: Sleeps) -> None:
    discord.queue_error(requests.ConnectionError("reset")).queue_error(requests.Timeout("slow"))
    answer = client.follow_up(TOKEN, {"content": "hi"})
    assert answer["content"] == "hi"
    assert len(sleeps) == 2


def test_400_reports_discords_message_and_is_not_retried(
    discord: DiscordFake, client, sleeps: Sleeps
) -> None:
    discord.queue(
        400,
        {
            "code": 50035,
            "message": "Invalid Form Body",
            "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}},
        },
    )
    with pytest.raises(DiscordError) as caught:
        client.post_to_channel(CHANNEL, {"content": "hi"})
    assert caught.value.status == 400
    assert "Invalid Form Body" in caught.value.reason
    assert "content" in caught.value.reason
    assert "POST /channels/{channel}/messages" in caught.value.reason
    assert len(discord.requests) == 1
    assert sleeps == []


def test_discords_message_is_truncated(discord: DiscordFake, client) -> None:
    discord.queue(403, {"code": 50013, "message": "Missing Permissions " + "z" * 1000})
    with pytest.raises(DiscordError) as caught:
        client.post_to_channel(CHANNEL, {"content": "hi"})
    assert "Missing Permissions" in caught.value.reason
    assert len(caught.value.reason) < 300


@pytest.mark.parametrize("status", [401, 404])
def test_refused_webhook_token_raises_token_rejected(
    discord: DiscordFake, client, status: int
) -> None:
    discord.queue(status, {"code": 10015, "message": "Unknown Webhook"})
    with pytest.raises(TokenRejected) as caught:
        client.edit_original(TOKEN, {"content": "hi"})
    assert caught.value.status == status
    assert len(discord.requests) == 1


def test_404_on_a_channel_is_not_a_token_problem(discord: DiscordFake, client) -> None:
    discord.queue(404, {"code": 10003, "message": "Unknown Channel"})
    with pytest.raises(DiscordError) as caught:
        client.post_to_channel(CHANNEL, {"content": "hi"})
    assert not isinstance(caught.value, TokenRejected)


# -- reply(): the interaction while it lives, the channel after --------------------------------


def reply(client: DiscordClient, **overrides: Any) -> Delivered:
    options: dict[str, Any] = {
        "token": TOKEN,
        "token_expires_at": NOW + 600,
        "channel_id": CHANNEL,
        "message": {"content": "Workflow plan-abc12 succeeded.", "flags": 64},
        "mention_user_id": USER,
        "now": NOW,
    }
    options.update(overrides)
    message, now = options.pop("message"), options.pop("now")
    return client.reply(ReplyTo(**options), message, now=now)


def assert_channel_ping(sent, text: str = "Workflow plan-abc12 succeeded.") -> None:
    assert sent.headers["Authorization"] == f"Bot {BOT_TOKEN}"
    assert sent.json["content"] == f"<@{USER}> {text}"
    assert sent.json["allowed_mentions"] == {"parse": [], "users": [USER]}
    assert "flags" not in sent.json  # a bot message cannot be ephemeral


def test_reply_with_a_live_token_edits_the_original(discord: DiscordFake, client) -> None:
    delivered = reply(client)
    [sent] = discord.requests
    assert sent.route == EDIT[1]
    assert delivered.via == "interaction"
    assert delivered.message_id and delivered.message_id.isdigit()
    # No mention while editing: the user is looking at the reply already.
    assert sent.json["allowed_mentions"] == {"parse": []}
    assert sent.json["content"] == "Workflow plan-abc12 succeeded."


def test_reply_with_an_expired_token_pings_the_user_in_the_channel(
    discord: DiscordFake, client
) -> None:
    delivered = reply(client, token_expires_at=NOW)  # expiry is exclusive
    [sent] = discord.requests
    assert sent.operation == " ".join(CHANNEL_POST)
    assert_channel_ping(sent)
    assert delivered == Delivered(via="channel", message_id=delivered.message_id)
    assert delivered.message_id


def test_reply_without_a_token_goes_to_the_channel(discord: DiscordFake, client) -> None:
    delivered = reply(client, token=None)
    assert delivered.via == "channel"
    assert discord.operations() == [" ".join(CHANNEL_POST)]


def test_copies_of_a_channel_post_carry_one_nonce_and_make_one_message(
    discord: DiscordFake, client
) -> None:
    key = "outcome:agents/plan-abc12#1"
    first, again = (reply(client, token=None, dedupe_key=key) for _ in range(2))
    other = reply(client, token=None, dedupe_key="outcome:agents/plan-abc12#2")
    posts = discord.to(*CHANNEL_POST)
    nonces = [post.json["nonce"] for post in posts]
    # Derived from the key (the same for every copy of what is said), within Discord's 25.
    assert nonces[0] == nonces[1] == ReplyTo(None, 0, CHANNEL, dedupe_key=key).nonce()
    assert nonces[2] != nonces[0] and all(len(n) <= 25 for n in nonces)
    assert all(post.json["enforce_nonce"] is True for post in posts)
    # Discord answers the second copy with the first message and creates no other.
    assert first.message_id == again.message_id != other.message_id
    assert [m["id"] for m in discord.channel_messages] == [first.message_id, other.message_id]


def test_without_a_key_each_post_has_its_own_nonce(discord: DiscordFake, client) -> None:
    first, second = (reply(client, token=None) for _ in range(2))
    a, b = discord.to(*CHANNEL_POST)
    assert a.json["nonce"] != b.json["nonce"] and first.message_id != second.message_id


def test_discord_forgets_a_nonce_after_a_few_minutes(discord: DiscordFake, client) -> None:
    from tests.helpers.fakes import DISCORD_NONCE_SECONDS

    now = [NOW]
    discord.clock = lambda: now[0]
    first = reply(client, token=None, dedupe_key="k")
    now[0] += DISCORD_NONCE_SECONDS
    assert reply(client, token=None, dedupe_key="k").message_id != first.message_id
    assert len(discord.channel_messages) == 2


def test_an_edit_carries_no_nonce(discord: DiscordFake, client) -> None:
    reply(client, dedupe_key="outcome:agents/plan-abc12#1")
    [edit] = discord.requests
    assert edit.route == EDIT[1] and "nonce" not in edit.json


@pytest.mark.parametrize("status", [401, 404])
def test_reply_falls_back_to_the_channel_when_the_token_is_refused(
    discord: DiscordFake, client, status: int, sleeps: Sleeps
) -> None:
    discord.queue(status, {"code": 10015, "message": "Unknown Webhook"})
    delivered = reply(client)
    edit, post = discord.requests
    assert edit.route == EDIT[1]
    assert post.route == CHANNEL_POST[1]
    assert_channel_ping(post)
    assert delivered.via == "channel"
    assert sleeps == []


def test_reply_does_not_fall_back_on_other_failures(discord: DiscordFake, client) -> None:
    discord.queue(400, {"code": 50035, "message": "Invalid Form Body"})
    with pytest.raises(DiscordError) as caught:
        reply(client)
    assert caught.value.status == 400
    assert len(discord.requests) == 1


def test_reply_without_bot_token_after_expiry_is_an_error(discord: DiscordFake) -> None:
    client = make_client(Sleeps(), bot_token=None)
    with pytest.raises(DiscordError) as caught:
        reply(client, token_expires_at=NOW - 1)
    assert "no bot token" in caught.value.reason
    assert caught.value.status is None
    assert discord.requests == []


def test_reply_without_bot_token_after_refusal_is_an_error(discord: DiscordFake) -> None:
    client = make_client(Sleeps(), bot_token=None)
    discord.queue(401, {"code": 50027, "message": "Invalid Webhook Token"})
    with pytest.raises(DiscordError) as caught:
        reply(client)
    assert "refused" in caught.value.reason and "no bot token" in caught.value.reason
    assert len(discord.requests) == 1


def test_reply_without_channel_after_expiry_is_an_error(discord: DiscordFake, client) -> None:
    with pytest.raises(DiscordError) as caught:
        reply(client, token_expires_at=NOW - 1, channel_id=None)
    assert "no channel" in caught.value.reason
    assert discord.requests == []


# -- IDs and tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("channel_id", ["general", "", "123/../../users/@me", "0123", "1" * 21])
def test_non_snowflake_channel_id_is_rejected(
    discord: DiscordFake, client, channel_id: str
) -> None:
    with pytest.raises(DiscordError) as caught:
        client.post_to_channel(channel_id, {"content": "hi"})
    assert caught.value.status is None
    assert discord.requests == []


def test_non_snowflake_user_to_mention_is_rejected(discord: DiscordFake, client) -> None:
    with pytest.raises(DiscordError):
        client.post_to_channel(CHANNEL, {"content": "hi"}, mention_user_id="@everyone")
    assert discord.requests == []


def test_missing_application_id_is_an_error(discord: DiscordFake) -> None:
    client = make_client(Sleeps(), application_id=None)
    with pytest.raises(DiscordError) as caught:
        client.edit_original(TOKEN, {"content": "hi"})
    assert "application id" in caught.value.reason
    assert discord.requests == []


def test_token_is_quoted_into_a_single_path_segment(discord: DiscordFake, client) -> None:
    odd = "abc/../../channels/1?x=#y"
    client.follow_up(odd, {"content": "hi"})
    [sent] = discord.requests
    assert sent.params["webhook_token"] == odd
    assert sent.url.startswith(
        f"{DISCORD_API}/webhooks/{APP}/abc%2F..%2F..%2Fchannels%2F1%3Fx%3D%23y"
    )


def _leaks(text: str) -> list[str]:
    return [name for name, secret in (("token", TOKEN), ("bot", BOT_TOKEN)) if secret in text]


def _error_text(err: BaseException) -> str:
    return "".join([str(err), repr(err), *traceback.format_exception(err)])


def test_no_token_in_logs_or_errors_on_connection_errors(
    discord: DiscordFake, client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Real requests exceptions name the URL, and with it the interaction token.
    url = f"{DISCORD_API}/webhooks/{APP}/{TOKEN}/messages/@original"
    for _ in range(4):
        discord.queue_error(requests.ConnectionError(f"Max retries exceeded with url: {url}"))
    with pytest.raises(DiscordError) as caught:
        client.edit_original(TOKEN, {"content": "hi"})
    assert caught.value.status is None
    assert "ConnectionError" in caught.value.reason
    assert _leaks(_error_text(caught.value)) == []
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert caplog.records, "retries should be logged"
    for record in caplog.records:
        assert _leaks(record.getMessage()) == [], record.getMessage()
    assert "PATCH /webhooks/{app}/{token}/messages/@original" in caplog.text


def test_no_token_in_logs_or_errors_through_reply_fallbacks(
    discord: DiscordFake, client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # Discord echoing a secret back is unheard of; the reason is scrubbed all the same.
    discord.queue(404, {"code": 10015, "message": f"Unknown Webhook {TOKEN}"})
    discord.queue(503).queue(429, {"message": "slow", "retry_after": 0.1, "global": False})
    discord.queue(401, {"code": 0, "message": f"401: Unauthorized {BOT_TOKEN}"})
    with pytest.raises(DiscordError) as caught:
        reply(client)
    assert caught.value.status == 401
    assert _leaks(_error_text(caught.value)) == []
    assert len(discord.requests) == 4
    assert caplog.records
    for record in caplog.records:
        assert _leaks(record.getMessage()) == [], record.getMessage()


def test_token_rejected_text_is_scrubbed(discord: DiscordFake, client) -> None:
    discord.queue(404, {"code": 10015, "message": f"Unknown Webhook {TOKEN}"})
    with pytest.raises(TokenRejected) as caught:
        client.follow_up(TOKEN, {"content": "hi"})
    assert _leaks(_error_text(caught.value)) == []
    assert "[redacted]" in caught.value.reason


def test_urllib3_request_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    import facteur.adapters.discord  # noqa: F401  (installs the filter)

    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s',
        "https",
        "discord.com",
        443,
        "PATCH",
        f"/api/v10/webhooks/{APP}/{TOKEN}/messages/@original",
        "HTTP/1.1",
        200,
        512,
    )
    assert _leaks(caplog.text) == []
    assert f"/webhooks/{APP}/{{token}}/messages/@original" in caplog.text


# -- the fake itself -------------------------------------------------------------------------


def test_the_fake_refuses_what_discord_would() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = DiscordFake(mock)
        agent = {"User-Agent": user_agent()}
        bot = {**agent, "Authorization": f"Bot {BOT_TOKEN}"}
        bad = [
            ("POST", f"/channels/{CHANNEL}/messages", {"contnet": "typo"}, bot),  # unknown key
            ("POST", f"/channels/{CHANNEL}/messages", {"content": "x" * 4001}, bot),  # too long
            ("POST", f"/channels/{CHANNEL}/messages", {"content": "hi"}, agent),  # no auth
            ("POST", "/channels/general/messages", {"content": "hi"}, bot),  # not a snowflake
            ("PUT", f"/channels/{CHANNEL}/messages", {"content": "hi"}, bot),  # no such method
            ("POST", "/nowhere", {"content": "hi"}, bot),  # no such path
            ("PATCH", f"/webhooks/{APP}/t/messages/@original", {"content": "hi"}, bot),  # needless
            (
                "POST",
                f"/channels/{CHANNEL}/messages",
                {"content": "hi"},
                {**bot, "User-Agent": "x"},
            ),
            (
                "POST",
                f"/channels/{CHANNEL}/messages",
                {"content": "hi", "allowed_mentions": {"parse": ["channels"]}},
                bot,
            ),
        ]
        for method, path, body, headers in bad:
            answer = requests.request(
                method, DISCORD_API + path, json=body, headers=headers, timeout=5
            )
            assert answer.status_code == 400, (method, path, body)
        assert len(fake.violations) == len(bad)
        with pytest.raises(AssertionError):
            fake.assert_clean()


# -- after the token: the same message, edited by the bot ---------------------------------------

BOT_EDIT = ("PATCH", "/channels/{channel_id}/messages/{message_id}")
ORIGINAL = "1200000000000000777"


def test_after_the_token_the_bot_edits_the_same_message(discord: DiscordFake, client) -> None:
    delivered = reply(client, token_expires_at=NOW, message_id=ORIGINAL)
    [sent] = discord.requests
    assert sent.operation == " ".join(BOT_EDIT)
    assert sent.params == {"channel_id": CHANNEL, "message_id": ORIGINAL}
    assert sent.headers["Authorization"] == f"Bot {BOT_TOKEN}"
    # The message the user has been looking at: no mention, nothing ephemeral.
    assert sent.json["allowed_mentions"] == {"parse": []}
    assert sent.json["content"] == "Workflow plan-abc12 succeeded."
    assert "flags" not in sent.json
    assert delivered == Delivered(via="message", message_id=ORIGINAL)


@pytest.mark.parametrize("status", [403, 404])
def test_a_refused_bot_edit_replies_to_the_original_pinging_only_the_requester(
    discord: DiscordFake, client, status: int
) -> None:
    discord.queue(status, {"message": "Unknown Message", "code": 10008})
    delivered = reply(client, token=None, message_id=ORIGINAL)
    edit, post = discord.requests
    assert edit.operation == " ".join(BOT_EDIT)
    assert post.operation == " ".join(CHANNEL_POST)
    assert_channel_ping(post)
    assert post.json["message_reference"] == {
        "message_id": ORIGINAL,
        "channel_id": CHANNEL,
        "fail_if_not_exists": False,
    }
    assert delivered.via == "channel"


def test_a_bot_edit_that_fails_otherwise_is_not_papered_over(discord: DiscordFake) -> None:
    client = DiscordClient(
        api_base_url=DISCORD_API,
        application_id=APP,
        bot_token=BOT_TOKEN,
        max_attempts=1,
        sleep=lambda _: None,
    )
    discord.queue(400, {"message": "Invalid Form Body", "code": 50035})
    with pytest.raises(DiscordError):
        reply(client, token=None, message_id=ORIGINAL)
    assert discord.operations() == [" ".join(BOT_EDIT)]


def test_a_run_thread_is_started_posted_in_and_archived_as_discords_spec_has_it(
    discord: DiscordFake, client
) -> None:
    discord.queue(201, {"id": "1300000000000000001", "type": 11, "name": "/plan plan-1"})
    thread_id = client.start_thread(CHANNEL, ORIGINAL, "/plan plan-1")
    client.post_to_thread(thread_id, {"content": "Failed steps:\n**build**: exit 2"})
    client.archive_thread(thread_id)
    start, post, archive = discord.requests
    assert start.operation == "POST /channels/{channel_id}/messages/{message_id}/threads"
    assert start.params == {"channel_id": CHANNEL, "message_id": ORIGINAL}
    assert start.json == {"name": "/plan plan-1", "auto_archive_duration": 1440}
    assert post.params == {"channel_id": thread_id}
    assert post.json["allowed_mentions"] == {"parse": []}
    assert (archive.operation, archive.json) == ("PATCH /channels/{channel_id}", {"archived": True})
    assert all(r.headers["Authorization"] == f"Bot {BOT_TOKEN}" for r in discord.requests)
