"""`facteur click`: a signed button click, as Discord sends it, and the interactions that
`send` and `click` build, checked against Discord's OpenAPI spec."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from facteur.adapters.envelope import open_event
from facteur.adapters.signature import Verifier
from facteur.cli import interactions, play
from facteur.decisions.interactions import SIGNATURE_HEADER, TIMESTAMP_HEADER, read_click
from facteur.decisions.journey import COMPONENT_CLICKED
from tests.cli import test_cli as base
from tests.helpers.contracts import assert_discord_value, discord_schema
from tests.helpers.servers import Sink, free_port
from tests.helpers.support import (
    APP,
    EVENT_KEY,
    GUILD,
    PUBLIC_KEY_HEX,
    ROLE_OTHER,
    ROLE_PLANNER,
    USER,
    base_env,
)

# The fixtures and helpers of the other commands' tests, used here as they are.
env = base.env
status_callback = base.status_callback
verify = base.verify
verify_sink = base.verify_sink
run, one_line, SEED = base.run, base.one_line, ["--key-seed-hex", base.TEST_SEED_HEX]

REF = "r3f-Abc_0123456789"
CANCEL = f"facteur:cancel:{REF}"


# -- the interactions, against Discord's spec -----------------------------------------------------


def _ref(name: str, *inside: str) -> dict[str, str]:
    return {"$ref": "#/components/schemas/" + "/".join([name, *inside])}


def _fields(where: str, value: dict[str, Any], schema: str) -> Iterator[tuple[str, Any, dict]]:
    known = discord_schema(schema)["properties"]
    for key, item in value.items():
        assert key in known, f"{where}.{key} is not in Discord's {schema}"
        yield f"{where}.{key}", item, _ref(schema, "properties", key)


def _parts(interaction: dict[str, Any]) -> Iterator[tuple[str, Any, dict]]:
    """Discord's spec describes no incoming interaction as a whole, only its parts: each field
    with the schema that describes it where Discord sends or takes the same thing."""
    kind = {2: "ApplicationCommand", 3: "MessageComponent"}[interaction["type"]]
    yield (
        "type",
        interaction["type"],
        _ref(f"{kind}InteractionMetadataResponse", "properties", "type"),
    )
    for key in ("id", "application_id", "guild_id", "channel_id"):
        yield key, interaction[key], _ref("SnowflakeType")
    for key in ("locale", "guild_locale"):
        yield key, interaction[key], _ref("AvailableLocalesEnum")
    permissions = _ref("GuildRoleResponse", "properties", "permissions")
    yield "app_permissions", interaction["app_permissions"], permissions
    yield from _fields("channel", interaction["channel"], "GuildChannelResponse")
    member = interaction["member"]
    yield "member.roles", member["roles"], _ref("GuildMemberResponse", "properties", "roles")
    yield "member.permissions", member["permissions"], permissions
    yield from _fields("member.user", member["user"], "UserResponse")
    data = dict(interaction["data"])
    if kind == "MessageComponent":
        button = "ButtonComponentForMessageRequest"
        yield "data.component_type", data.pop("component_type"), _ref(button, "properties", "type")
        yield from _fields("data", data, button)
    else:
        data.pop("options", None)  # values, which the spec describes nowhere; typed by the catalog
        yield from _fields("data", data, "ApplicationCommandResponse")


def assert_fits_discord(interaction: dict[str, Any]) -> None:
    checked = set()
    for where, value, schema in _parts(interaction):
        assert_discord_value(value, schema, where)
        checked.add(where.partition(".")[0])
    # Every field is checked but the token and the version, which the spec leaves undescribed.
    assert set(interaction) - checked == {"token", "version"}


WHO = {"application_id": APP, "guild_id": GUILD, "user_id": USER, "roles": [ROLE_PLANNER]}


@pytest.mark.parametrize(
    "interaction",
    [
        pytest.param(interactions.button_click(CANCEL, **WHO), id="click"),
        pytest.param(interactions.application_command("status", [], **WHO), id="send"),
        pytest.param(
            interactions.application_command(
                "plan", [{"name": "objective", "type": 3, "value": "x"}], **WHO
            ),
            id="send-with-options",
        ),
    ],
)
def test_the_interactions_fit_discords_spec(interaction: dict[str, Any]) -> None:
    assert_fits_discord(interaction)


def test_the_spec_check_catches_a_stray_field() -> None:
    bad = interactions.button_click(CANCEL, **WHO)
    bad["data"]["customid"] = bad["data"].pop("custom_id")
    with pytest.raises(AssertionError, match="customid"):
        assert_fits_discord(bad)
    bad = interactions.button_click(CANCEL, **WHO) | {"type": 2}
    with pytest.raises(AssertionError):
        assert_fits_discord(bad)


def test_a_click_is_a_button_interaction_from_the_same_caller_as_a_command() -> None:
    click = interactions.button_click(CANCEL, **WHO)
    command = interactions.application_command("plan", [], **WHO)
    assert click["type"] == 3
    assert click["data"] == {"custom_id": CANCEL, "component_type": 2}
    assert {k: v for k, v in click.items() if k not in ("id", "token", "data", "type")} == {
        k: v for k, v in command.items() if k not in ("id", "token", "data", "type")
    }
    assert click["id"] != command["id"] and click["token"] != command["token"]


# -- click, against a recording server -----------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "custom"),
    [
        (["cancel", REF], CANCEL),
        ([CANCEL], CANCEL),
        (["retry", REF], f"facteur:retry:{REF}"),
        (["facteur:retry:abcdefgh"], "facteur:retry:abcdefgh"),
        (["facteur:cancel:-h12345678"], "facteur:cancel:-h12345678"),  # a ref like an option
    ],
)
def test_click_posts_a_signed_button_interaction(
    env, capsys, status_callback, argv: list[str], custom: str
) -> None:
    env(base_env())
    status_callback.answer = (200, b'{"type": 6}')
    code, out, err = run(capsys, "click", *argv, "--url", status_callback.url, *SEED)
    assert (code, out, err) == (0, '200 {"type": 6}\n', "")
    [(headers, raw)] = status_callback.received
    assert headers["Content-Type"] == "application/json"
    # The check interaction_verify makes, with the key these settings trust.
    Verifier(PUBLIC_KEY_HEX).verify(headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER], raw)
    body = json.loads(raw)
    assert_fits_discord(body)
    assert body["data"] == {"custom_id": custom, "component_type": 2}
    click = read_click(body)  # interaction_verify's own reading
    assert click is not None
    assert (click.action, click.ref) == tuple(custom.split(":")[1:])
    assert (click.guild_id, click.application_id) == (GUILD, APP)
    assert (click.user_id, click.member_roles) == (
        interactions.LOCAL_USER,
        [interactions.LOCAL_MEMBER_ROLE],
    )


def test_click_as_another_user_and_roles(env, capsys, status_callback) -> None:
    env(base_env())
    who = ["--user", USER, "--as-role", ROLE_PLANNER, "--role", ROLE_OTHER]
    assert run(capsys, "click", "cancel", REF, *who, "--url", status_callback.url, *SEED)[0] == 0
    [(_, raw)] = status_callback.received
    member = json.loads(raw)["member"]
    assert (member["user"]["id"], member["roles"]) == (USER, [ROLE_PLANNER, ROLE_OTHER])


def test_click_reports_a_refusal_and_warns_of_a_key_these_settings_do_not_trust(
    env, capsys, status_callback
) -> None:
    env(base_env())
    status_callback.answer = (401, b'{"error": "invalid request signature"}')
    code, out, err = run(capsys, "click", "cancel", REF, "--url", status_callback.url)
    assert code == 1
    assert out == '401 {"error": "invalid request signature"}\n'
    hint = one_line(err)
    assert hint.startswith("facteur click: the signature was refused: signed with public key ")
    assert "(the published development key), but these settings trust " in hint
    assert "FACTEUR_DEV_KEY_SEED" in hint


def test_click_says_nothing_of_keys_when_the_target_takes_it(env, capsys, status_callback) -> None:
    # A key these settings do not trust is no mistake if the target trusts it: only a 401 hints.
    env(base_env())
    status_callback.answer = (200, b'{"type": 6}')
    code, out, err = run(capsys, "click", "cancel", REF, "--url", status_callback.url)
    assert (code, out, err) == (0, '200 {"type": 6}\n', "")


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["halt", REF],
            "facteur click: expected cancel or stop or retry or approve or reject or logs "
            "(or a whole custom_id), not 'halt'",
        ),
        (["approve", REF], "facteur click: which step? give the STEP after the REF"),
        (["confirm", REF, "1"], "facteur click: stop names no step: give none after the REF"),
        (["approve", REF, "12ab"], "facteur click: '12ab' is not a step of a facteur button"),
        (["cancel", REF, "123"], "facteur click: cancel names no step: give none after the REF"),
        (["Cancel", REF], None),
        (["cancel"], "facteur click: which run? give the REF after cancel, as the button's line"),
        (["cancel", "short"], "facteur click: 'short' is not the ref of a facteur button"),
        (["cancel", "a" * 33], None),
        (["cancel", "has:a:colon"], None),
        (["cancel", "r3f/../../x"], None),
        (["facteur:halt:abcdefgh"], "facteur click: 'facteur:halt:abcdefgh' is not the custom_id"),
        (["facteur:cancel:abc"], None),
        (["other:cancel:abcdefgh"], None),
        ([CANCEL, REF], f"facteur click: {CANCEL!r} is a whole custom_id: give no REF after it"),
        ([], "facteur click: error: the following arguments are required: ACTION"),
        (["cancel", REF, "--url", "file:///etc/passwd"], "facteur click: error: argument --url"),
        (["cancel", REF, "--user", "everyone"], "facteur click: error: argument --user"),
        (["cancel", REF, "1", "extra"], "facteur: error: unrecognized arguments: extra"),
    ],
)
def test_a_bad_click_is_one_line_and_sends_nothing(
    env, capsys, status_callback, argv: list[str], line: str | None
) -> None:
    env(base_env())
    code, out, err = run(capsys, "click", *argv, "--url", status_callback.url, *SEED)
    assert (code, out) == (2, "")
    assert one_line(err).startswith(line or "facteur click: ")
    assert status_callback.received == []


def test_click_to_nothing_is_one_line(env, capsys) -> None:
    env(base_env())
    url = f"http://127.0.0.1:{free_port()}/"
    code, out, err = run(capsys, "click", "cancel", REF, "--url", url, *SEED)
    assert (code, out) == (1, "")
    assert one_line(err).startswith(f"facteur click: cannot reach {url}: ")


# -- click, against a real interaction_verify -----------------------------------------------------


@pytest.mark.process
def test_click_is_forwarded_by_interaction_verify(
    env, capsys, verify: str, verify_sink: Sink
) -> None:
    env(base_env())
    before = len(verify_sink.received)
    code, out, err = run(capsys, "click", CANCEL, "--url", verify, *SEED)
    assert (code, out) == (0, '200 {"type": 6}\n'), err
    [event] = verify_sink.events()[before:]
    data = open_event(EVENT_KEY, event, {COMPONENT_CLICKED})
    assert (data["action"], data["ref"]) == ("cancel", REF)
    assert (data["user_id"], data["guild_id"]) == (interactions.LOCAL_USER, GUILD)


@pytest.mark.process
@pytest.mark.parametrize(
    ("argv", "action", "step"),
    [
        (["approve", REF, "1234567890"], "approve", "1234567890"),
        (["reject", REF, "42"], "reject", "42"),
        (["confirm", REF], "stop", None),
        (["logs", REF], "logs", None),
        # A pick in the Logs select menu (component type 3): the step is the chosen value.
        (["logs", REF, "42"], "logs", "42"),
    ],
)
def test_every_button_and_the_logs_menu_can_be_clicked(
    env, capsys, verify: str, verify_sink: Sink, argv: list[str], action: str, step: str | None
) -> None:
    env(base_env())
    before = len(verify_sink.received)
    code, out, err = run(capsys, "click", *argv, "--url", verify, *SEED)
    assert (code, out) == (0, '200 {"type": 6}\n'), err
    [event] = verify_sink.events()[before:]
    data = open_event(EVENT_KEY, event, {COMPONENT_CLICKED})
    assert (data["action"], data["ref"], data["step"]) == (action, REF, step)


def test_a_pick_is_a_string_select_and_a_step_button_carries_its_step() -> None:
    caller: dict[str, Any] = {"application_id": APP, "guild_id": GUILD, "user_id": USER}
    pick = interactions.button_click(f"facteur:logs:{REF}", **caller, roles=[], picked="42")
    assert pick["data"] == {
        "custom_id": f"facteur:logs:{REF}",
        "component_type": 3,
        "values": ["42"],
    }
    assert play.component("approve", REF, "42") == (f"facteur:approve:{REF}:42", None)
    assert play.component("logs", REF, "42") == (f"facteur:logs:{REF}", "42")
    assert play.component("confirm", REF) == (f"facteur:stop:{REF}", None)
