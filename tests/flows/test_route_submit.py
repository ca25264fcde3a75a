"""command_route and workflow_submit flows on a real Redis, with Discord and Argo fakes that
validate every request against the real specs."""

from __future__ import annotations

import time

import pytest
import requests

from facteur.adapters.argo import ArgoClient
from facteur.adapters.sessions import SessionStore
from facteur.decisions import render
from facteur.decisions.journey import Journey
from tests.helpers.chain import CHANNEL_POST, FOLLOW_UP, NAMESPACE, UI, Chain, journey
from tests.helpers.discord_fake import ORIGINAL
from tests.helpers.servers import free_port
from tests.helpers.support import ROLE_OTHER, USER


def _privately(chain: Chain, trip: Journey) -> str:
    """What was said to the user alone, as Discord received it (validated against its spec):
    the deferred reply deleted, then one ephemeral follow-up, on the command's token."""
    assert chain.discord.operations() == [f"DELETE {ORIGINAL}", " ".join(FOLLOW_UP)]
    [deleted], [said] = chain.discord.to("DELETE", ORIGINAL), chain.discord.to(*FOLLOW_UP)
    assert deleted.params["webhook_token"] == said.params["webhook_token"] == trip.call.token
    assert said.json["flags"] == 64
    assert chain.edits() == []
    return str(said.json["content"])


def test_plan_starts_one_workflow_and_edits_the_reply(chain: Chain) -> None:
    trip = journey("plan", [{"name": "objective", "type": 3, "value": "ship it"}])
    route, submit = chain.run(trip)
    assert (route.status, route.result) == (200, "requested")
    assert (submit.status, submit.result) == (200, "submitted")
    [created] = chain.created()
    workflow = created["workflow"]
    assert workflow["metadata"]["name"] == f"plan-{trip.call.interaction_id}"
    assert workflow["spec"]["workflowTemplateRef"] == {"name": "facteur-dispatch"}
    assert workflow["spec"]["serviceAccountName"] == "facteur-agent"
    assert workflow["spec"]["arguments"]["parameters"] == [
        {"name": "repoURL", "value": "https://git.example/r.git"},
        {"name": "objective", "value": "ship it"},
        {"name": "action", "value": "plan"},
    ]
    labels = workflow["metadata"]["labels"]
    assert labels["facteur.dev/correlation-id"] == trip.correlation_id
    assert labels["facteur.dev/user-id"] == USER
    [edit] = chain.edits()
    assert f"plan-{trip.call.interaction_id}" in edit["content"]
    assert edit["allowed_mentions"] == {"parse": []}
    embed = edit["embeds"][0]
    assert embed["url"] == f"{UI}/workflows/{NAMESPACE}/plan-{trip.call.interaction_id}"
    assert embed["footer"]["text"] == f"correlation {trip.correlation_id}"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    # Who asked, and what: the request as typed, short.
    assert fields["Requested by"] == f"<@{trip.call.user_id}>"
    assert fields["Request"] == "objective: ship it"
    session = chain.store.find_workflow(NAMESPACE, f"plan-{trip.call.interaction_id}")
    assert session.correlation_id == trip.correlation_id
    assert session.message_id
    assert chain.store.token(trip.correlation_id) == trip.call.token
    assert chain.store.last_for_user(USER).correlation_id == trip.correlation_id


def test_the_same_event_twice_gives_one_workflow_and_one_reply(chain: Chain) -> None:
    trip = journey()
    chain.run(trip)
    again = chain.route(trip)
    assert again.result == "duplicate"
    # workflow_submit redelivered on its own: Argo says 409, the reply is not sent twice.
    assert chain.submit(chain.sent[0]).result == "already-submitted"
    assert len(chain.argo.workflows) == 1
    assert len(chain.edits()) == 1


def test_argo_503_twice_then_success(chain: Chain) -> None:
    chain.argo.queue("POST", 503, times=2)
    _, submit = chain.run(journey())
    assert submit.result == "submitted"
    assert len(chain.argo.workflows) == 1
    assert len(chain.created()) == 3
    assert "Started `/plan`" in chain.edits()[0]["content"]


@pytest.mark.parametrize("status", [400, 404])
def test_missing_template_fails_once_and_says_why(chain: Chain, status: int) -> None:
    # Argo's docs leave open whether a missing template is 400 or 404; both are permanent.
    chain.argo.templates = {"something-else"}
    chain.argo.missing_template_status = status
    _, submit = chain.run(journey())
    assert (submit.status, submit.result) == (200, "failed")
    assert len(chain.created()) == 1
    [edit] = chain.edits()
    assert edit["content"].startswith("`/plan` was not started: Argo refused it:")
    assert "facteur-dispatch" in edit["content"]


def test_argo_down_asks_for_redelivery_and_tells_the_user_once(chain: Chain) -> None:
    chain.argo.queue("POST", 503, times=None)
    _, submit = chain.run(journey())
    assert (submit.status, submit.result) == (503, "retrying")
    [edit] = chain.edits()
    assert edit["content"] == render.still_trying("plan", render.ARGO_DOWN)
    assert chain.argo.workflows == {}


def test_discord_429_on_the_edit_is_waited_out(chain: Chain) -> None:
    chain.discord.queue_rate_limit(0.25)
    _, submit = chain.run(journey())
    assert submit.status == 200
    assert 0.25 in chain.sleeps
    assert len(chain.edits()) == 2  # the refused attempt and the delivered one
    assert len(chain.argo.workflows) == 1


def test_discord_down_asks_for_redelivery_and_the_redelivery_replies_once(chain: Chain) -> None:
    for _ in range(4):
        chain.discord.queue_error(requests.ConnectionError("down"))
    trip = journey()
    _, submit = chain.run(trip)
    assert submit.status == 503
    retry = chain.submit(chain.sent[0])
    assert (retry.status, retry.result) == (200, "already-submitted")
    assert len(chain.argo.workflows) == 1
    assert chain.store.find_workflow(NAMESPACE, retry.workflow).message_id


def test_review_carries_the_last_correlation(chain: Chain) -> None:
    first = journey("plan")
    chain.run(first)
    review = journey(
        "review",
        [
            {"name": "project", "type": 3, "value": "facteur"},
            {"name": "artifact", "type": 3, "value": "pr/1"},
        ],
    )
    chain.run(review)
    parameters = chain.created()[-1]["workflow"]["spec"]["arguments"]["parameters"]
    assert {"name": "last_correlation_id", "value": first.correlation_id} in parameters
    assert f"Last request correlation: `{first.correlation_id}`" in chain.edits()[-1]["content"]


def test_review_without_history_sends_no_last_correlation(chain: Chain) -> None:
    review = journey(
        "review",
        [
            {"name": "project", "type": 3, "value": "facteur"},
            {"name": "artifact", "type": 3, "value": "pr/1"},
            {"name": "notes", "type": 3, "value": ""},
        ],
    )
    chain.run(review)
    parameters = chain.created()[-1]["workflow"]["spec"]["arguments"]["parameters"]
    names = [p["name"] for p in parameters]
    assert "last_correlation_id" not in names
    assert "notes" not in names  # empty optional options are dropped


def test_user_text_reaches_argo_as_one_intact_parameter(chain: Chain) -> None:
    value = "a=b,c=d\naction=evil,last_correlation_id=x"
    chain.run(journey("plan", [{"name": "objective", "type": 3, "value": value}]))
    parameters = chain.created()[-1]["workflow"]["spec"]["arguments"]["parameters"]
    assert {"name": "objective", "value": value} in parameters
    assert {"name": "action", "value": "plan"} in parameters
    assert [p["name"] for p in parameters].count("action") == 1


def test_everyone_in_user_text_pings_nobody(chain: Chain) -> None:
    chain.run(journey("plan", [{"name": "objective", "type": 3, "value": "@everyone <@&1>"}]))
    assert all(edit["allowed_mentions"] == {"parse": []} for edit in chain.edits())


def test_route_reapplies_the_role_policy(chain: Chain) -> None:
    trip = journey("plan", roles=[ROLE_OTHER])
    outcome = chain.route(trip)
    assert outcome.result == "refused"
    assert chain.sent == []
    assert _privately(chain, trip).startswith("You can't run `/plan`")


def test_route_rechecks_options(chain: Chain) -> None:
    trip = journey("plan", [{"name": "objective", "type": 4, "value": 1}])
    outcome = chain.route(trip)
    assert outcome.result == "refused"
    assert "`objective` has the wrong type" in _privately(chain, trip)
    assert chain.sent == []


def test_redis_down_at_route_still_starts_exactly_one_workflow(chain: Chain) -> None:
    # Found by bench/fault_chain.py: refusing here could contradict an earlier copy's success.
    down = SessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0", 60)
    chain.router.store = chain.submitter.store = down
    trip = journey()
    outcomes = chain.run(trip) + chain.run(trip)  # and a redelivery
    assert [o.result for o in outcomes] == [
        "requested",
        "submitted",
        "requested",
        "already-submitted",
    ]
    assert len(chain.argo.workflows) == 1
    assert all("Started `/plan`" in edit["content"] for edit in chain.edits())


def test_redis_down_at_submit_still_replies(chain: Chain) -> None:
    trip = journey()
    chain.route(trip)
    chain.submitter.store = SessionStore.from_url(f"redis://127.0.0.1:{free_port()}/0", 60)
    outcome = chain.submit(chain.sent[0])
    assert outcome.result == "submitted"
    assert "could not record this run" in chain.edits()[0]["content"]


def test_sink_failure_tells_the_user(chain: Chain) -> None:
    chain.sink_fails = True
    trip = journey()
    outcome = chain.route(trip)
    assert outcome.result == "failed"
    assert "couldn't accept `/plan`" in _privately(chain, trip)


def test_unreachable_discord_on_a_refusal_asks_for_redelivery(chain: Chain) -> None:
    for _ in range(4):
        chain.discord.queue_error(requests.ConnectionError("down"))
    trip = journey("plan", roles=[ROLE_OTHER])
    assert chain.route(trip).status == 503
    # Nothing was said in the open meanwhile: the redelivery says it, privately.
    assert chain.route(trip).status == 200
    assert chain.discord.to(*CHANNEL_POST) == [] and chain.edits() == []
    assert len(chain.discord.to(*FOLLOW_UP)) == 1


def test_unreachable_discord_releases_the_claim(chain: Chain) -> None:
    chain.sink_fails = True
    for _ in range(4):
        chain.discord.queue_error(requests.ConnectionError("down"))
    trip = journey()
    assert chain.route(trip).status == 503
    chain.sink_fails = False
    # The redelivery is handled, not suppressed as a duplicate.
    assert chain.route(trip).result == "requested"


def test_status_without_history(chain: Chain) -> None:
    outcome = chain.route(journey("status", [], roles=[]))
    assert outcome.result == "status"
    assert chain.edits()[0]["content"] == "You have no recent facteur runs."


def test_status_shows_the_last_run_and_its_phase(chain: Chain) -> None:
    trip = journey("plan")
    chain.run(trip)
    name = f"plan-{trip.call.interaction_id}"
    chain.argo.set_phase(NAMESPACE, name, "Running")
    chain.route(journey("status", [], roles=[]))
    status = chain.edits()[-1]
    assert status["content"] == render.RECENT_RUNS_TITLE
    [field] = status["embeds"][0]["fields"]
    assert field["name"] == f"/plan · {name}"
    assert field["value"].startswith("**Running** · requested <t:")
    assert f"[Open in Argo]({UI}/workflows/{NAMESPACE}/{name})" in field["value"]
    assert field["value"].endswith("\nobjective: ship it")


def test_expired_token_falls_back_to_a_channel_post(chain: Chain) -> None:
    trip = journey(received_at=time.time() - 900)
    chain.run(trip)
    [post] = chain.discord.to(*CHANNEL_POST)
    assert post.json["content"].startswith(f"<@{USER}> ")
    assert post.json["allowed_mentions"] == {"parse": [], "users": [USER]}
    assert post.headers["Authorization"] == "Bot bot-token-SECRET"
    assert chain.edits() == []


def test_concurrent_copies_at_submit_reply_once(chain: Chain) -> None:
    # Found by bench/fault_chain.py: two copies racing past the 409 both used to reply.
    from concurrent.futures import ThreadPoolExecutor

    trip = journey()
    chain.route(trip)
    [event] = chain.sent
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda _: chain.submit(event), range(4)))
    # A copy that meets another's live claim answers 503, for Knative to bring it back later.
    assert {(o.status, o.result) for o in outcomes} <= {
        (200, "submitted"),
        (200, "already-submitted"),
        (503, "in-progress"),
    }
    assert len(chain.argo.workflows) == 1
    assert len(chain.edits()) == 1
    # Redelivered once the first copy is done, they are duplicates.
    assert chain.submit(event).result == "already-submitted"
    assert len(chain.edits()) == 1


def test_a_create_that_timed_out_but_happened_is_a_success(chain: Chain) -> None:
    # Found by bench/fault_chain.py: Argo created the workflow but every answer came too late.
    chain.submitter.argo = ArgoClient(
        server_url=chain.argo.base_url, token="argo-SECRET", backoff_factor=0, timeout=0.3
    )
    chain.argo.queue("POST", None, delay=1.0, times=None)
    _, submit = chain.run(journey())
    assert submit.result == "already-submitted"
    assert len(chain.argo.workflows) == 1
    assert "Started `/plan`" in chain.edits()[0]["content"]
