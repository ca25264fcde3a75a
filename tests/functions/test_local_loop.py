"""The README's run command: the whole loop on loopback with no cluster and no accounts, and
Ctrl+C leaves no process behind."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers.support import ROOT

pytestmark = pytest.mark.process
# A member other than the one `facteur send` plays, with the same role.
OTHER = "100000000000000999"


def _free_block(size: int = 10) -> int:
    """A base port with `size` free ports after it."""
    for base in range(20000 + os.getpid() % 1000 * 20, 60000, 37):
        sockets = []
        try:
            for port in range(base, base + size):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                sockets.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free block of ports")


def _facteur(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "facteur", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
    )


def _wait_for(path: Path, pattern: str, timeout: float = 30.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, path.read_text(errors="replace"))
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} never appeared in:\n{path.read_text()[-3000:]}")


def _click(log: Path, label: str, url: str, env: dict[str, str]) -> None:
    """Run the `facteur click ...` line the console printed under the message's button."""
    printed = _wait_for(log, rf"  \[{label}\] (facteur click [^\n]+)\n")[1]
    clicked = _facteur(*shlex.split(printed)[1:], "--url", url, env=env)
    assert clicked.returncode == 0, clicked.stderr
    assert clicked.stdout.strip() == '200 {"type": 6}'


@contextmanager
def _loop(tmp_path: Path, **settings: str) -> Iterator[tuple[Path, int, dict[str, str]]]:
    """./scripts/dev on a free block of ports: its log, its base port, and the environment the
    `facteur` verbs run in; Ctrl-C at the end, which must stop everything."""
    base = _free_block()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTEUR_") and k != "K_SINK"}
    # TMPDIR: where `facteur send` notes the newest run, this test's own.
    env |= {"FACTEUR_DEV_PORT_BASE": str(base), "TMPDIR": str(tmp_path), **settings}
    log = tmp_path / "dev.log"
    with open(log, "w") as out:
        loop = subprocess.Popen(
            [str(ROOT / "scripts" / "dev")],
            cwd=str(ROOT),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(log, "Ctrl-C stops everything", timeout=90)
        # The banner comes only once every function answers: no waiting for ports here.
        for port in range(base, base + 4):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as got:
                assert got.status == 200
        # What the banner says to export is all the verbs need: no FACTEUR_CONFIG_FILE.
        assert f"  export FACTEUR_DEV_PORT_BASE={base}\n" in log.read_text()
        yield log, base, env
    finally:
        os.killpg(loop.pid, signal.SIGINT)
        try:
            loop.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(loop.pid, signal.SIGKILL)
            raise


def _send(log: Path, url: str, config: dict[str, str]) -> str:
    sent = _facteur("send", "/plan objective:try it", "--url", url, env=config)
    assert sent.returncode == 0, sent.stderr
    answer, interaction, workflow, seen = sent.stdout.splitlines()
    assert answer == '200 {"type": 5, "data": {"flags": 0}}'
    # What the log would tell, told by send itself.
    interaction_id = interaction.removeprefix("interaction  ")
    assert workflow.startswith(f"workflow     plan-{interaction_id} ")
    assert seen == "user sees    thinking…, until the reply is edited"
    name = _wait_for(log, r"would POST /api/v1/workflows/agents creating workflow (plan-\d+)")[1]
    assert name == f"plan-{interaction_id}"
    _wait_for(log, rf"\[discord CONSOLE.*Started `/plan` as workflow `{name}`")
    return name


def test_run_command_shows_the_loop_end_to_end(tmp_path: Path) -> None:
    with _loop(tmp_path) as (log, base, config):
        url = f"http://127.0.0.1:{base}/"
        name = _send(log, url, config)
        # Click the message's Cancel button with the command the console printed for it.
        _click(log, "Cancel", url, config)
        # Cancel asks first; its "Stop the run" button acts.
        _click(log, "Stop the run", url, config)
        _wait_for(log, rf"would PUT /api/v1/workflows/agents/{name}/stop \(stopping")
        _wait_for(log, rf"\[discord CONSOLE.*`/plan` run `{name}`: cancelled by <@\d+>\.")
        # As the README and the banner write it: the newest run, at the port base's callback.
        back = _facteur("callback", "--last", "--status", "Failed", env=config)
        assert back.returncode == 0, back.stderr
        assert f"reporting on {name}," in back.stderr
        _wait_for(log, r"\[discord CONSOLE.*`/plan` finished: \*\*Failed\*\*")
        # The failed run's message offers Retry; clicking it retries the same workflow.
        _click(log, "Retry", url, config)
        _wait_for(log, rf"would PUT /api/v1/workflows/agents/{name}/retry \(retrying")
        _wait_for(log, rf"\[discord CONSOLE.*`/plan` run `{name}`: retried by <@\d+> \(attempt 2\)")


def test_the_loop_plays_an_approval_and_the_logs_of_a_failed_step(tmp_path: Path) -> None:
    settings = {
        "FACTEUR_DEV_DRY_RUN_GATE": "true",
        "FACTEUR_DEV_DRY_RUN_OUTCOME": "Failed",
        "FACTEUR_DEV_DRY_RUN_SECONDS": "4",
        "FACTEUR_DEV_TICK_SECONDS": "1",
        "FACTEUR_CARD_MIN_EDIT_INTERVAL_SECONDS": "0",
    }
    with _loop(tmp_path, **settings) as (log, base, config):
        url = f"http://127.0.0.1:{base}/"
        name = _send(log, url, config)
        _wait_for(log, rf"`/plan` is waiting for approval as workflow `{name}`")
        printed = _wait_for(log, r"  \[Approve approve\] (facteur click [^\n]+)\n")[1]
        # The requester may not approve their own run; another member may.
        _facteur(*shlex.split(printed)[1:], "--url", url, env=config)
        _wait_for(log, r"You can't answer this approval: you asked for this run")
        other = _facteur(*shlex.split(printed)[1:], "--user", OTHER, "--url", url, env=config)
        assert other.returncode == 0, other.stderr
        _wait_for(log, rf"`/plan` run `{name}`: `approve` approved by <@{OTHER}>\.")
        _wait_for(log, r"\[discord CONSOLE.*`/plan` finished: \*\*Failed\*\*", timeout=40)
        _click(log, "Logs", url, config)
        _wait_for(log, r"Last \d+ lines of `step-5`:")


def _dev(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "dev")],
        cwd=str(ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,
    )


def test_a_busy_port_is_named_before_anything_starts(tmp_path: Path) -> None:
    base = _free_block()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACTEUR_") and k != "K_SINK"}
    env |= {"FACTEUR_DEV_PORT_BASE": str(base), "TMPDIR": str(tmp_path)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        done = _dev(env)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"port {base + 1} (command_route) is in use; set FACTEUR_DEV_PORT_BASE"
    )
    assert "running locally" not in done.stdout


def test_a_process_that_dies_is_named(tmp_path: Path) -> None:
    with _loop(tmp_path) as (log, base, _):
        found = subprocess.run(
            ["pgrep", "-o", "-f", f"target workflow_submit .*--port {base + 2}"],
            capture_output=True,
            text=True,
        )
        [pid] = found.stdout.split()
        os.kill(int(pid), signal.SIGTERM)
        _wait_for(log, rf"workflow_submit \(port {base + 2}\) exited; stopping the rest")
