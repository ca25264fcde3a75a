"""The Logs button's choices and what it shows: in the message, or as a file. Pure."""

from __future__ import annotations

from facteur.decisions import run_logs
from facteur.decisions.interactions import CONTENT_LIMIT
from facteur.decisions.workflow import NodeState
from facteur.logs import Scrubber

RUN = "implement-1000000000000000001"


def _pod(step: str, name: str, phase: str) -> NodeState:
    return NodeState(f"{RUN}-{step}", name, "Pod", phase, pod_name=f"{RUN}-{name}-{step}")


NODES = [
    NodeState(RUN, RUN, "Steps", "Running"),
    _pod("11", "checkout", "Succeeded"),
    _pod("22", "build", "Failed"),
    _pod("33", "lint", "Error"),
    _pod("44", "deploy", "Running"),
]


def test_failed_steps_come_first_then_the_running_ones() -> None:
    assert [s.name for s in run_logs.steps_with_logs(RUN, NODES)] == ["build", "lint"]
    running = [n for n in NODES if n.phase not in ("Failed", "Error")]
    assert [s.name for s in run_logs.steps_with_logs(RUN, running)] == ["deploy"]
    assert run_logs.steps_with_logs(RUN, NODES[:2]) == []


def test_a_step_named_by_a_select_menu_is_any_pod_of_the_run() -> None:
    found = run_logs.step_named(RUN, NODES, "11")
    assert found is not None and (found.name, found.pod_name) == ("checkout", f"{RUN}-checkout-11")
    assert run_logs.step_named(RUN, NODES, "99") is None


def test_short_logs_fit_a_code_block_and_secrets_are_scrubbed() -> None:
    step = run_logs.step_named(RUN, NODES, "22")
    assert step is not None
    scrub = Scrubber(["s3cr3t-token-value"]).scrub
    shown = run_logs.show(step, ["compiling", "token=s3cr3t-token-value", "```boom"], scrub)
    assert shown.file is None
    assert shown.text.startswith("Last 3 lines of `build`:\n```\n")
    assert "s3cr3t" not in shown.text and "[redacted]" in shown.text
    # The step's own fence cannot close facteur's code block.
    assert shown.text.count("```") == 2


def test_long_logs_are_attached_as_a_file() -> None:
    step = run_logs.step_named(RUN, NODES, "22")
    assert step is not None
    lines = [f"line {n}: " + "x" * 80 for n in range(40)]
    shown = run_logs.show(step, lines, str)
    assert shown.file is not None and len(shown.text) <= CONTENT_LIMIT
    assert shown.file.filename == "build.log"
    assert shown.file.content.decode().splitlines() == lines


def test_empty_logs_say_so() -> None:
    step = run_logs.step_named(RUN, NODES, "22")
    assert step is not None
    shown = run_logs.show(step, [], str)
    assert shown.file is None and "no log lines of `build`" in shown.text


def test_a_filename_is_facteurs_own() -> None:
    assert run_logs.filename("../../etc/passwd") == "etc-passwd.log"
    assert run_logs.filename("…") == "step.log"
