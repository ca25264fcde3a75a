"""The built-ins command_route answers itself: /status [workflow] and /help."""

from __future__ import annotations

import json

from facteur.config import DEFAULT_CATALOG_FILE, load_catalog
from tests.helpers.chain import NAMESPACE, UI, Chain, journey
from tests.helpers.contracts import assert_discord
from tests.helpers.support import GUILD, ROLE_OTHER, ROLE_PLANNER

STATUS = "status"


def _last(chain: Chain) -> dict:
    return chain.edits()[-1]


def test_status_by_name_shows_that_run(chain: Chain) -> None:
    first, second = journey("plan"), journey("plan")
    chain.run(first)
    chain.run(second)
    name = f"plan-{first.call.interaction_id}"
    chain.argo.set_phase(
        NAMESPACE,
        name,
        "Succeeded",
        started_at="2026-11-27T10:00:00Z",
        finished_at="2026-11-27T10:02:05Z",
    )
    chain.route(journey(STATUS, [{"name": "workflow", "type": 3, "value": name}], roles=[]))
    embed = _last(chain)["embeds"][0]
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert embed["title"] == name
    assert fields["Phase"] == "Succeeded"
    assert fields["Ran for"] == "2 min 05 s"
    assert embed["footer"]["text"] == f"correlation {first.correlation_id}"
    assert embed["url"] == f"{UI}/workflows/{NAMESPACE}/{name}"


def test_status_of_an_unknown_or_invalid_name(chain: Chain) -> None:
    chain.route(journey(STATUS, [{"name": "workflow", "type": 3, "value": "plan-404"}], roles=[]))
    assert _last(chain)["content"] == "facteur knows no run named `plan-404`."
    bad = "x,y=z <@&1> ../../"
    chain.route(journey(STATUS, [{"name": "workflow", "type": 3, "value": bad}], roles=[]))
    assert _last(chain)["content"] == "That is not a workflow name."


def test_status_of_a_deleted_run(chain: Chain) -> None:
    trip = journey("plan")
    chain.run(trip)
    name = f"plan-{trip.call.interaction_id}"
    del chain.argo.workflows[(NAMESPACE, name)]
    chain.route(journey(STATUS, [], roles=[]))
    [field] = _last(chain)["embeds"][0]["fields"]
    assert field["value"].startswith("**Deleted** ·")
    chain.route(journey(STATUS, [{"name": "workflow", "type": 3, "value": name}], roles=[]))
    fields = {f["name"]: f["value"] for f in _last(chain)["embeds"][0]["fields"]}
    assert fields["Phase"] == "Deleted"


def test_help_lists_only_what_the_caller_may_run(chain: Chain) -> None:
    chain.router.role_map = {"plan": [ROLE_PLANNER], "status": [GUILD], "help": [GUILD]}
    chain.route(journey("help", [], roles=[ROLE_PLANNER]))
    text = _last(chain)["content"]
    assert "`/plan` `objective!` `project`" in text
    assert "`/status`" in text and "`/help`" in text
    assert "/implement" not in text and "/review" not in text
    chain.route(journey("help", [], roles=[ROLE_OTHER]))
    text = _last(chain)["content"]
    assert "/plan" not in text and "`/status`" in text


def test_the_catalog_registers_status_and_help() -> None:
    catalog = load_catalog(DEFAULT_CATALOG_FILE)
    payload = [command.to_discord() for command in catalog.commands]
    names = [command["name"] for command in payload]
    assert "status" in names and "help" in names
    status = catalog.get("status")
    assert status.builtin and status.ephemeral
    assert [o.name for o in status.options] == ["workflow"]
    assert catalog.get("help").builtin and catalog.get("help").ephemeral
    for command in payload:
        assert_discord(json.loads(json.dumps(command)), "ApplicationCommandUpdateRequest")
