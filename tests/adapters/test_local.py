"""The local loop's stand-ins, and that production never falls back to them."""

from __future__ import annotations

import json
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from facteur.adapters.discord import DiscordClient
from facteur.adapters.dry_run_argo import DISCORD_EPOCH_MS, DryRunArgo, Lifecycle
from facteur.adapters.local import ConsoleDiscord
from facteur.bootstrap import argo as argo_client
from facteur.bootstrap import discord as discord_client
from facteur.cli import parser, play
from facteur.config import load_settings
from facteur.decisions import ids, render
from facteur.decisions.ids import RETRY
from facteur.decisions.interactions import Attachment
from facteur.decisions.journey import ReplyTo
from facteur.decisions.workflow import NodeState, WorkflowRequest
from facteur.errors import ArgoError, ConfigError
from tests.helpers.argo_fake import SwaggerContract

REF = "r3f-Abc_0123456789"
UI = "http://localhost:2746"
ACTED = {
    "command": "plan",
    "workflow": "plan-1",
    "namespace": "agents",
    "ui_url": UI,
    "action": RETRY,
    "user_id": "100000000000000100",
    "attempt": 2,
}


def test_without_dev_embedded_the_real_settings_are_required() -> None:
    with pytest.raises(ConfigError, match=r"argo\.server_url"):
        load_settings(["argo.server_url", "argo.namespace"], environ={})
    settings = load_settings(environ={})
    assert argo_client(settings) is None
    assert isinstance(discord_client(settings), DiscordClient)


def test_dev_embedded_stands_in_only_for_what_is_missing() -> None:
    settings = load_settings(
        ["argo.server_url", "argo.namespace", "discord.application_id", "redis.url"],
        environ={"FACTEUR_DEV_EMBEDDED": "true", "FACTEUR_REDIS_URL": "redis://127.0.0.1:1/0"},
    )
    assert isinstance(argo_client(settings), DryRunArgo)
    assert isinstance(discord_client(settings), ConsoleDiscord)
    with pytest.raises(ConfigError, match=r"redis\.url"):
        load_settings(["redis.url"], environ={"FACTEUR_DEV_EMBEDDED": "true"})
    real = load_settings(
        environ={
            "FACTEUR_DEV_EMBEDDED": "true",
            "FACTEUR_ARGO_SERVER_URL": "https://argo.test",
            "FACTEUR_DISCORD_BOT_TOKEN": "bot",
        }
    )
    assert not isinstance(argo_client(real), DryRunArgo)
    assert isinstance(discord_client(real), DiscordClient)


def test_dry_run_prints_the_request_argo_would_get(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    submitted = DryRunArgo(state_dir=tmp_path).submit(
        WorkflowRequest(
            "agents",
            "plan-1",
            "facteur-dispatch",
            parameters={"objective": "a=b,c"},
            labels={"facteur.dev/command": "plan"},
        )
    )
    assert submitted.created
    printed = capsys.readouterr().err
    assert "DRY RUN" in printed
    body = printed[printed.index("{") :]
    request = json.loads(body)
    assert request["workflow"]["spec"]["arguments"]["parameters"] == [
        {"name": "objective", "value": "a=b,c"}
    ]
    contract = SwaggerContract.load()
    schema = contract.definition("io.argoproj.workflow.v1alpha1.WorkflowCreateRequest")
    assert contract.check_instance(schema, request, "$") == []


def test_console_prints_every_message(capsys: pytest.CaptureFixture[str]) -> None:
    ConsoleDiscord().reply(
        ReplyTo(None, 0, "1", "2"),
        {"content": "hello", "embeds": [{"title": "t", "fields": [{"name": "a", "value": "b"}]}]},
    )
    printed = capsys.readouterr().err
    assert "CONSOLE" in printed and "hello" in printed and "a: b" in printed


def _printed(capsys: pytest.CaptureFixture[str], message: dict[str, Any]) -> list[str]:
    ConsoleDiscord().edit_original("token", message)
    return capsys.readouterr().err.splitlines()


def test_console_prints_a_line_a_button(capsys: pytest.CaptureFixture[str]) -> None:
    url = render.workflow_url(UI, "agents", "plan-1")
    started = render.submitted(
        command="plan",
        workflow="plan-1",
        namespace="agents",
        correlation_id="c",
        ui_url=UI,
        ref=REF,
    )
    assert _printed(capsys, started)[-2:] == [
        f"  [Open in Argo] {url}",
        f"  [Cancel] facteur click cancel {REF}",
    ]
    failed = render.final_status(
        command="plan",
        workflow="plan-1",
        namespace="agents",
        status="Failed",
        correlation_id="c",
        duration=1.0,
        failures=[],
        message=None,
        ui_url=UI,
        ref=REF,
    )
    assert _printed(capsys, failed)[-3:] == [
        f"  [Open in Argo] {url}",
        f"  [Retry] facteur click retry {REF}",
        f"  [Logs] facteur click logs {REF}",
    ]
    # No ref, no action buttons: only the link is left.
    assert _printed(capsys, render.acted(**ACTED, ref=None))[-1] == f"  [Open in Argo] {url}"
    assert not any("facteur click" in line for line in _printed(capsys, render.text("hi")))
    # A button that is not facteur's shows its custom_id, and no command that would fail.
    foreign = {"type": 1, "components": [{"type": 2, "label": "X", "custom_id": "other:1"}]}
    assert _printed(capsys, {"content": "", "components": [foreign]})[-1] == (
        "  [X] custom_id other:1"
    )


@pytest.mark.parametrize("ref", [REF, "-0NezT-p_Eu4", "-h12345678", "--url-1234"])
def test_the_printed_command_clicks_that_button(
    capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    # Refs are URL-safe base64: one that starts with "-" must not read as an option.
    message = render.acted(**ACTED, ref=ref)
    [row] = message["components"]
    [button] = [b for b in row["components"] if "custom_id" in b]
    [line] = [line for line in _printed(capsys, message) if "facteur click" in line]
    argv = shlex.split(line.partition("] ")[2])
    assert argv[:2] == ["facteur", "click"]
    args = parser.build().parse_args(argv[1:])
    assert play.component(args.action, args.ref, args.step) == (button["custom_id"], None)


def _named_at(seconds_ago: float) -> str:
    born_ms = int((time.time() - seconds_ago) * 1000) - DISCORD_EPOCH_MS
    return f"plan-{born_ms << 22}"


def test_the_dry_run_plays_a_lifecycle_by_the_runs_age(tmp_path: Path) -> None:
    argo = DryRunArgo(Lifecycle(outcome="Failed", seconds=20), tmp_path)
    phases = []
    for age in (1, 5, 12, 19, 25):
        state = argo.get_workflow("agents", _named_at(age))
        assert state is not None
        phases.append((state.phase, state.progress))
    assert phases[0] == ("Pending", None)
    assert [phase for phase, _ in phases[1:4]] == ["Running"] * 3
    # Progress only goes forward, and the run ends as told.
    assert [progress for _, progress in phases[1:4]] == sorted(p for _, p in phases[1:4])
    assert phases[4] == ("Failed", "5/5")
    ended = argo.get_workflow("agents", _named_at(25))
    assert ended is not None and ended.duration is not None
    # A name without an interaction ID (not facteur's) just runs.
    other = argo.get_workflow("agents", "something-else")
    assert other is not None and other.phase == "Running"


# -- the dry run's shared state: gate, stop, mutex queue, logs --------------------------------

BORN = 1_700_000_000.0
NS = "agents"
# Lifecycle(seconds=20): Pending 3 s, then five steps of 3.4 s; the gate comes after two.
GATE_AT = BORN + 3 + 2 * 3.4


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _name(born: float, command: str = "plan") -> str:
    return f"{command}-{(int(born * 1000) - DISCORD_EPOCH_MS) << 22}"


def _dry(
    tmp_path: Path, clock: Clock, *, gate: bool = False, outcome: str = "Succeeded"
) -> DryRunArgo:
    return DryRunArgo(Lifecycle(outcome, 20.0, gate, 600.0), tmp_path, clock)


def _submit(argo: DryRunArgo, name: str, mutex: str | None = None) -> None:
    assert argo.submit(WorkflowRequest(NS, name, "facteur-dispatch", mutex=mutex)).created


def _phase(argo: DryRunArgo, name: str) -> tuple[str | None, str | None]:
    state = argo.get_workflow(NS, name)
    assert state is not None
    return state.phase, state.progress


def _nodes(argo: DryRunArgo, name: str) -> list[tuple[str, str, str | None]]:
    return [(n.display_name, n.type, n.phase) for n in argo.get_nodes(NS, name)]


def _gate(argo: DryRunArgo, name: str) -> NodeState:
    [gate] = [n for n in argo.get_nodes(NS, name) if n.type == "Suspend"]
    return gate


def test_the_gate_waits_for_an_answer_then_the_run_goes_on(tmp_path: Path) -> None:
    clock = Clock(BORN + 1)
    argo, name = _dry(tmp_path, clock, gate=True), _name(BORN)
    _submit(argo, name)
    clock.now = GATE_AT - 0.5
    assert not [n for n in argo.get_nodes(NS, name) if n.type == "Suspend"]
    clock.now = GATE_AT + 100  # long after: the run waits at the gate, its clock paused
    assert _phase(argo, name) == ("Running", "2/5")
    assert _nodes(argo, name) == [
        ("step-1", "Pod", "Succeeded"),
        ("step-2", "Pod", "Succeeded"),
        ("approve", "Suspend", "Running"),
    ]
    gate = _gate(argo, name)
    assert ids.step_of(name, gate.id) is not None
    assert gate.template_name == "approve" and gate.pod_name is None
    assert gate.supplied == ("approve",)
    assert gate.choices == (("approve", ("YES", "NO")),)
    assert gate.suspend_seconds == 600.0
    assert gate.started_at == datetime.fromtimestamp(GATE_AT, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    argo.set_node(NS, name, gate.id, message="Approved by Alice", outputs={"approve": "YES"})
    answered = _gate(argo, name)
    assert answered.supplied == () and answered.message == "Approved by Alice"
    assert answered.phase == "Running"  # set is not resume
    argo.resume_node(NS, name, gate.id)
    resumed = clock.now
    clock.now = resumed + 1
    assert _phase(argo, name) == ("Running", "2/5")
    assert _nodes(argo, name)[2:] == [
        ("approve", "Suspend", "Succeeded"),
        ("step-3", "Pod", "Running"),
    ]
    clock.now = resumed + 3 * 3.4 + 0.1  # the three steps after the gate
    state = argo.get_workflow(NS, name)
    assert state is not None and (state.phase, state.progress) == ("Succeeded", "5/5")
    assert state.duration == pytest.approx(17 + 100)  # its steps, and the wait at the gate


def test_the_gate_refuses_what_argo_refuses(tmp_path: Path) -> None:
    clock = Clock(GATE_AT + 1)
    argo, name = _dry(tmp_path, clock, gate=True), _name(BORN)
    _submit(argo, name)
    gate = _gate(argo, name)
    step = argo.get_nodes(NS, name)[0]
    with pytest.raises(ArgoError, match="only targets suspend nodes"):
        argo.set_node(NS, name, step.id, outputs={"approve": "YES"})
    with pytest.raises(ArgoError, match="only targets suspend nodes"):
        argo.resume_node(NS, name, f"{name}-1")
    with pytest.raises(ArgoError, match="not expecting output parameter 'other'"):
        argo.set_node(NS, name, gate.id, outputs={"other": "x"})
    argo.set_node(NS, name, gate.id, outputs={"approve": "YES"})
    with pytest.raises(ArgoError, match="already set"):
        argo.set_node(NS, name, gate.id, outputs={"approve": "NO"})
    with pytest.raises(ArgoError) as unknown:
        argo.resume_node(NS, "not-a-dry-run", gate.id)
    assert unknown.value.status == 404
    argo.resume_node(NS, name, gate.id)
    # Resumed, it is no longer a suspend node Argo would set.
    with pytest.raises(ArgoError, match="only targets suspend nodes"):
        argo.resume_node(NS, name, gate.id)


def test_no_at_the_gate_ends_the_run_failed(tmp_path: Path) -> None:
    clock = Clock(GATE_AT + 5)
    argo, name = _dry(tmp_path, clock, gate=True), _name(BORN)
    _submit(argo, name)
    gate = _gate(argo, name)
    argo.set_node(NS, name, gate.id, message="Rejected by Bob", outputs={"approve": "NO"})
    assert _phase(argo, name) == ("Running", "2/5")  # not until it is resumed
    argo.resume_node(NS, name, gate.id)
    clock.now += 60
    state = argo.get_workflow(NS, name)
    assert state is not None
    assert (state.phase, state.message) == ("Failed", "rejected at approve")
    assert state.duration == pytest.approx(GATE_AT + 5 - (BORN + 3))
    assert _nodes(argo, name)[-1] == ("approve", "Suspend", "Succeeded")


def test_the_gate_resumes_by_itself_when_its_duration_passes(tmp_path: Path) -> None:
    clock = Clock(GATE_AT + 599)
    argo, name = _dry(tmp_path, clock, gate=True), _name(BORN)
    _submit(argo, name)
    assert _gate(argo, name).phase == "Running"
    clock.now = GATE_AT + 601
    assert _gate(argo, name).phase == "Succeeded"
    assert _nodes(argo, name)[-1] == ("step-3", "Pod", "Running")
    with pytest.raises(ArgoError, match="only targets suspend nodes"):
        argo.resume_node(NS, name, _gate(argo, name).id)
    clock.now = BORN + 20 + 600 + 1
    assert _phase(argo, name) == ("Succeeded", "5/5")


@pytest.mark.parametrize("strategy", ["Stop", "Terminate"])
def test_a_stopped_run_reads_failed_from_then_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], strategy: str
) -> None:
    clock = Clock(BORN + 8)  # step-2 is running
    argo, name = _dry(tmp_path, clock), _name(BORN)
    _submit(argo, name)
    argo.stop(NS, name) if strategy == "Stop" else argo.terminate(NS, name)
    verb = strategy.lower()
    assert f"would PUT /api/v1/workflows/{NS}/{name}/{verb} (" in capsys.readouterr().err
    for later in (BORN + 8, BORN + 15, BORN + 3600):
        clock.now = later
        state = argo.get_workflow(NS, name)
        assert state is not None
        assert (state.phase, state.message) == ("Failed", f"Stopped with strategy '{strategy}'")
        assert state.duration == pytest.approx(5)
    assert _nodes(argo, name) == [("step-1", "Pod", "Succeeded"), ("step-2", "Pod", "Failed")]
    assert argo.get_nodes(NS, name)[-1].message == f"Stopped with strategy '{strategy}'"
    # A second stop changes nothing: the first one stands.
    argo.stop(NS, name)
    state = argo.get_workflow(NS, name)
    assert state is not None and state.message == f"Stopped with strategy '{strategy}'"


def test_runs_on_one_mutex_go_one_at_a_time(tmp_path: Path) -> None:
    clock = Clock(BORN + 1)
    argo = _dry(tmp_path, clock)
    first, second, other = _name(BORN), _name(BORN + 1), _name(BORN + 1, "review")
    _submit(argo, first, "facteur-plan-x")
    clock.now = BORN + 1.5
    _submit(argo, second, "facteur-plan-x")
    _submit(argo, other, "facteur-review-y")
    clock.now = BORN + 10
    assert _phase(argo, first)[0] == "Running"
    assert _phase(argo, other)[0] == "Running"  # another lock: no wait
    waiting = argo.get_workflow(NS, second)
    assert waiting is not None
    assert (waiting.phase, waiting.waiting_for) == ("Pending", first)
    assert waiting.message == "Waiting for agents/Mutex/facteur-plan-x lock. Lock status: 0/1"
    assert argo.get_nodes(NS, second) == []
    # Its clock starts when the first ends (BORN + 20): Pending 3 s, then Running.
    clock.now = BORN + 21
    assert _phase(argo, first) == ("Succeeded", "5/5")
    after = argo.get_workflow(NS, second)
    assert after is not None and after.phase == "Pending" and after.waiting_for is None
    clock.now = BORN + 24
    assert _phase(argo, second) == ("Running", "0/5")
    clock.now = BORN + 41
    assert _phase(argo, second) == ("Succeeded", "5/5")


def test_a_queued_run_can_be_stopped_and_a_stop_frees_the_lock(tmp_path: Path) -> None:
    clock = Clock(BORN + 1)
    argo = _dry(tmp_path, clock)
    first, second, third = _name(BORN), _name(BORN + 1), _name(BORN + 2)
    for name in (first, second, third):
        _submit(argo, name, "m")
        clock.now += 0.5
    clock.now = BORN + 5
    argo.stop(NS, second)
    stopped = argo.get_workflow(NS, second)
    assert stopped is not None
    assert (stopped.phase, stopped.message) == ("Failed", "Stopped with strategy 'Stop'")
    assert stopped.started_at is None and stopped.waiting_for is None
    # The stopped one never held the lock: the third waits for the first.
    third_state = argo.get_workflow(NS, third)
    assert third_state is not None and third_state.waiting_for == first
    clock.now = BORN + 10
    argo.stop(NS, first)
    clock.now = BORN + 10 + 3 + 0.1
    assert _phase(argo, third) == ("Running", "0/5")


def test_logs_of_a_pod(tmp_path: Path) -> None:
    clock = Clock(BORN + 12)  # step-3 is running
    argo, name = _dry(tmp_path, clock, outcome="Failed"), _name(BORN)
    _submit(argo, name)
    nodes = argo.get_nodes(NS, name)
    for node in nodes:
        assert ids.step_of(name, node.id) is not None
        assert node.pod_name is not None and node.pod_name.startswith(
            f"{name}-{node.template_name}-"
        )
    first = nodes[0].pod_name
    assert first is not None
    lines = argo.logs(NS, name, first)
    assert lines[0].startswith("step-1: ") and lines[-1] == "step-1: done"
    assert len(lines) > 3
    assert argo.logs(NS, name, first, tail_lines=3) == lines[-3:]
    running = nodes[-1].pod_name
    assert running is not None and argo.logs(NS, name, running)[-1].startswith("step-3: working")
    for workflow, pod in ((name, f"{name}-step-9-1"), ("something-else", first)):
        with pytest.raises(ArgoError) as missing:
            argo.logs(NS, workflow, pod)
        assert missing.value.status == 404
    # Failed: the last step failed, and its log says why.
    clock.now = BORN + 21
    last = argo.get_nodes(NS, name)[-1]
    assert (last.display_name, last.phase, last.message) == (
        "step-5",
        "Failed",
        "Error (exit code 1)",
    )
    assert last.pod_name is not None
    assert "error: exit code 1" in argo.logs(NS, name, last.pod_name)[-1]


def test_two_dry_runs_on_one_directory_share_the_runs(tmp_path: Path) -> None:
    # As workflow_submit, command_route and status_callback do, each in its own process.
    clock = Clock(BORN + 1)
    submit, route, callback = (_dry(tmp_path, clock, gate=True) for _ in range(3))
    name, queued = _name(BORN), _name(BORN + 1)
    _submit(submit, name, "m")
    _submit(submit, queued, "m")
    clock.now = GATE_AT + 1
    gate = _gate(callback, name)
    route.set_node(NS, name, gate.id, outputs={"approve": "YES"})
    assert _gate(callback, name).supplied == ()
    route.resume_node(NS, name, gate.id)
    assert _gate(callback, name).phase == "Succeeded"
    queued_state = callback.get_workflow(NS, queued)
    assert queued_state is not None and queued_state.waiting_for == name
    route.stop(NS, name)
    state = callback.get_workflow(NS, name)
    assert state is not None and state.phase == "Failed"
    assert [p.name for p in (tmp_path / NS).glob("*.json")] != []
    saved = json.loads((tmp_path / NS / f"{name}.json").read_text())
    assert saved["mutex"] == "m" and saved["approve"] == "YES"
    assert saved["resumed_at"] == GATE_AT + 1 and saved["stopped_at"] == GATE_AT + 1


def test_a_dry_run_without_a_file_plays_by_its_name_and_writes_nothing(tmp_path: Path) -> None:
    argo = _dry(tmp_path, Clock(BORN + 10))
    assert _phase(argo, _name(BORN))[0] == "Running"
    assert argo.get_nodes(NS, "../../etc") == []
    assert argo.get_workflow(NS, "../../etc") is not None
    assert not any(tmp_path.iterdir())


# -- the console: buttons with steps, select menus, files ---------------------------------------


def test_console_prints_a_click_for_each_step_button_and_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dash = "-h12345678"
    buttons = [
        {"type": 2, "label": "Approve", "custom_id": ids.custom_id("approve", REF, "123")},
        {"type": 2, "label": "Reject", "custom_id": ids.custom_id("reject", dash, "123")},
        {"type": 2, "label": "Stop", "custom_id": ids.custom_id("stop", REF)},
    ]
    menu = {
        "type": 3,
        "custom_id": ids.custom_id("logs", REF),
        "placeholder": "Logs of a step",
        "options": [
            {"label": "step-1", "value": "4242"},
            {"label": "step-2", "value": "99"},
        ],
    }
    message = {
        "content": "",
        "components": [{"type": 1, "components": buttons}, {"type": 1, "components": [menu]}],
    }
    assert _printed(capsys, message)[1:] == [
        f"  [Approve] facteur click approve {REF} 123",
        f"  [Reject] facteur click facteur:reject:{dash}:123",
        f"  [Stop] facteur click stop {REF}",
        f"  [step-1] facteur click logs {REF} 4242",
        f"  [step-2] facteur click logs {REF} 99",
    ]
    # Each line clicks its button, or picks its option in the menu.
    clicked = []
    for line in _printed(capsys, message)[1:]:
        args = parser.build().parse_args(shlex.split(line.partition("] ")[2])[1:])
        clicked.append(play.component(args.action, args.ref, args.step))
    assert clicked == [
        (buttons[0]["custom_id"], None),
        (buttons[1]["custom_id"], None),
        (buttons[2]["custom_id"], None),
        (menu["custom_id"], "4242"),
        (menu["custom_id"], "99"),
    ]


def test_console_prints_a_follow_ups_files(capsys: pytest.CaptureFixture[str]) -> None:
    text = "\n".join(f"line {n}" for n in range(1, 9)).encode()
    ConsoleDiscord().follow_up(
        "token", {"content": "the logs"}, files=[Attachment("step-3.log", text)]
    )
    printed = capsys.readouterr().err.splitlines()
    assert printed[0].endswith(": the logs")
    assert printed[1:] == [
        f"  [file step-3.log, {len(text)} bytes]",
        "    | line 1",
        "    | line 2",
        "    | line 3",
        "    | line 4",
        "    | line 5",
        "    | … 3 more lines",
    ]


def test_the_dev_settings_shape_the_dry_run(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "FACTEUR_DEV_EMBEDDED": "true",
            "FACTEUR_DEV_DRY_RUN_STATE_DIR": str(tmp_path),
            "FACTEUR_DEV_DRY_RUN_GATE": "true",
            "FACTEUR_DEV_DRY_RUN_GATE_SECONDS": "30",
        }
    )
    argo = argo_client(settings)
    assert isinstance(argo, DryRunArgo)
    assert argo.state_dir == tmp_path
    assert (argo.lifecycle.gate, argo.lifecycle.gate_seconds) == (True, 30.0)
    default = argo_client(load_settings(environ={"FACTEUR_DEV_EMBEDDED": "true"}))
    assert isinstance(default, DryRunArgo) and not default.lifecycle.gate
    assert default.state_dir.name.startswith("facteur-dry-run-")
