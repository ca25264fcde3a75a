"""The whole chain as real functions-framework processes: interaction_verify -> command_route ->
workflow_submit, chained by K_SINK, with a real Redis and loopback fakes of Argo and Discord that
validate every request against the real specs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.argo_fake import FakeArgo
from tests.helpers.discord_fake import DiscordFake
from tests.helpers.servers import FunctionProcess, post
from tests.helpers.support import CALLBACK_TOKEN, EVENT_KEY, base_env, command, sign

pytestmark = pytest.mark.process

EDIT = ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original")
FOLLOW_UP = ("POST", "/webhooks/{webhook_id}/{webhook_token}")


def _until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def chain(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, FakeArgo, DiscordFake, list]]:
    with FakeArgo.served() as argo, DiscordFake.served() as discord:
        env = base_env(
            FACTEUR_REDIS_URL=redis_url,
            FACTEUR_ARGO_SERVER_URL=argo.base_url,
            FACTEUR_ARGO_UI_URL="https://argo.example.test",
            FACTEUR_DISCORD_API_BASE_URL=discord.url,
            FACTEUR_DISCORD_BOT_TOKEN="bot-token-SECRET-e2e",
        )
        procs: list[FunctionProcess] = []
        try:
            submit = FunctionProcess("workflow_submit", env, tmp_path / "submit.log")
            procs.append(submit)
            route = FunctionProcess(
                "command_route", env | {"K_SINK": submit.url}, tmp_path / "route.log"
            )
            procs.append(route)
            verify = FunctionProcess(
                "interaction_verify", env | {"K_SINK": route.url}, tmp_path / "verify.log"
            )
            procs.append(verify)
            callback = FunctionProcess("status_callback", env, tmp_path / "callback.log")
            procs.append(callback)
            for proc in procs:
                proc.wait_ready()
            yield verify.url, argo, discord, procs, callback.url
        finally:
            for proc in procs:
                proc.stop()


def test_a_signed_command_becomes_one_workflow_one_reply_and_one_outcome(chain) -> None:
    verify_url, argo, discord, procs, callback_url = chain
    value = "ship it, then a=b\nand @everyone"
    payload = command(
        "plan",
        [{"name": "objective", "type": 3, "value": value}],
        interaction_id="1100000000000000777",
    )
    body = json.dumps(payload).encode()
    headers = sign(body)
    status, _, raw = post(verify_url, body, headers)
    assert status == 200
    assert json.loads(raw) == {"type": 5, "data": {"flags": 0}}
    _until(lambda: len(discord.to(*EDIT)) == 1)
    # A replay of the same signed request, and it all settles: still one of each.
    assert post(verify_url, body, headers)[0] == 200
    time.sleep(1.0)
    assert list(argo.workflows) == [("agents", "plan-1100000000000000777")]
    [created] = argo.bodies("POST")
    parameters = created["workflow"]["spec"]["arguments"]["parameters"]
    assert {"name": "objective", "value": value} in parameters
    [edit] = discord.to(*EDIT)
    assert "plan-1100000000000000777" in edit.json["content"]
    assert edit.json["allowed_mentions"] == {"parse": []}
    assert edit.params["webhook_token"] == payload["token"]
    # The entrypoint fails and Argo runs the exit handler, which reports the outcome; once Argo
    # confirms it, the same message is edited with it.
    argo.set_phase("agents", "plan-1100000000000000777", "Running", entry="Failed")
    outcome = {
        "name": "plan-1100000000000000777",
        "namespace": "agents",
        "status": "Failed",
        "duration": "42",
        "failures": json.dumps([{"displayName": "build", "message": "exit code 2"}]),
    }
    auth = {"Authorization": f"Bearer {CALLBACK_TOKEN}", "Content-Type": "application/json"}
    status, _, raw = post(callback_url, json.dumps(outcome).encode(), auth)
    assert (status, json.loads(raw)["result"]) == (200, "reported")
    assert post(callback_url, json.dumps(outcome).encode(), auth)[0] == 200  # duplicate
    final = discord.to(*EDIT)[1:]
    assert len(final) == 1
    assert final[0].json["content"] == "`/plan` finished: **Failed**"
    logs = "".join(proc.logs() for proc in procs)
    for secret in (payload["token"], "bot-token-SECRET-e2e", EVENT_KEY, CALLBACK_TOKEN):
        assert secret not in logs
    # One JSON object per line, each naming its function; the audit trail tells the story.
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert lines and all("function" in line and "event" in line for line in lines)
    events = [(line["function"], line["event"]) for line in lines if line.get("audit")]
    for expected in [
        ("command_route", "workflow.requested"),
        ("workflow_submit", "workflow.submitted"),
        ("command_route", "command.duplicate_suppressed"),
        ("status_callback", "workflow.reported"),
    ]:
        assert expected in events, events
    submitted = next(line for line in lines if line.get("event") == "workflow.submitted")
    assert submitted["correlation_id"] and submitted["workflow"] == "plan-1100000000000000777"
    handled = [line for line in lines if line["message"] == "handled"]
    assert all("outcome" in line and "duration_ms" in line for line in handled)


def test_clicking_cancel_goes_through_the_real_chain(chain) -> None:
    verify_url, argo, discord, _, _ = chain
    payload = command("plan", interaction_id="1100000000000000888")
    body = json.dumps(payload).encode()
    assert post(verify_url, body, sign(body))[0] == 200
    _until(lambda: len(discord.to(*EDIT)) == 1)
    [row] = discord.to(*EDIT)[0].json["components"]
    [cancel] = [c["custom_id"] for c in row["components"] if "custom_id" in c]
    assert cancel.startswith("facteur:cancel:") and "1100000000000000888" not in cancel

    def clicked(interaction_id: str, custom_id: str, token: str) -> bytes:
        click = {
            "id": interaction_id,
            "application_id": payload["application_id"],
            "type": 3,
            "token": token,
            "guild_id": payload["guild_id"],
            "channel_id": payload["channel_id"],
            "member": payload["member"],
            "message": {"id": "1100000000000000001"},
            "data": {"custom_id": custom_id, "component_type": 2},
        }
        return json.dumps(click).encode()

    # Cancel asks first, privately, and stops nothing.
    raw = clicked("1100000000000000887", cancel, "click-token-SECRET-ask")
    status, _, answer = post(verify_url, raw, sign(raw))
    assert (status, json.loads(answer)) == (200, {"type": 6})
    _until(lambda: len(discord.to(*FOLLOW_UP)) == 1)
    question = discord.to(*FOLLOW_UP)[0].json
    assert question["flags"] == 64 and question["content"].startswith("Stop `/plan` run ")
    [[stop]] = [[c["custom_id"] for c in row["components"]] for row in question["components"]]
    assert stop == cancel.replace("facteur:cancel:", "facteur:stop:")
    assert not [r for r in argo.requests if (r.operation or "").endswith("StopWorkflow")]

    # The confirmation stops it, and the run's message says who did.
    raw = clicked("1100000000000000889", stop, "click-token-SECRET-e2e")
    status, _, answer = post(verify_url, raw, sign(raw))
    assert (status, json.loads(answer)) == (200, {"type": 6})
    _until(lambda: len(discord.to(*EDIT)) == 3)
    stops = [r for r in argo.requests if (r.operation or "").endswith("StopWorkflow")]
    assert len(stops) == 1
    answered, run_message = discord.to(*EDIT)[1:]
    assert answered.params["webhook_token"] == "click-token-SECRET-e2e"
    assert answered.json["content"].startswith("Stopping ")
    assert "cancelled by" in run_message.json["content"]
    # The same click delivered again (a replay within the window) does nothing more.
    assert post(verify_url, raw, sign(raw))[0] == 200
    time.sleep(1.0)
    assert len([r for r in argo.requests if (r.operation or "").endswith("StopWorkflow")]) == 1
