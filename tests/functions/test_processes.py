"""The functions as real functions-framework processes on loopback."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from facteur.adapters.envelope import encode, open_event, seal
from facteur.decisions.journey import COMMAND_RECEIVED
from tests.helpers.contracts import assert_interaction_response
from tests.helpers.servers import BIN, FunctionProcess, Sink, post
from tests.helpers.support import CALLBACK_TOKEN, EVENT_KEY, ROOT, base_env, command, sign

pytestmark = pytest.mark.process


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    started: list[FunctionProcess] = []

    def start(name: str, env: dict[str, str]) -> FunctionProcess:
        proc = FunctionProcess(name, env, tmp_path / f"{name}-{len(started)}.log")
        started.append(proc)
        return proc.wait_ready()

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="module")
def module_sink() -> Iterator[Sink]:
    sink = Sink()
    yield sink
    sink.close()


@pytest.fixture(scope="module")
def verify(tmp_path_factory: pytest.TempPathFactory, module_sink: Sink) -> Iterator:
    proc = FunctionProcess(
        "interaction_verify",
        base_env(K_SINK=module_sink.url),
        tmp_path_factory.mktemp("verify") / "verify.log",
    )
    yield proc.wait_ready()
    proc.stop()


def _json(result) -> dict:
    return json.loads(result[2])


def test_ping_over_http(verify: FunctionProcess) -> None:
    body = b'{"type":1}'
    status, headers, raw = post(verify.url, body, sign(body))
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert_interaction_response(json.loads(raw))


def test_command_over_http_reaches_the_sink(verify: FunctionProcess, module_sink: Sink) -> None:
    payload = command("plan", interaction_id="900000000000000555")
    body = json.dumps(payload).encode()
    status, _, raw = post(verify.url, body, sign(body))
    assert status == 200
    assert json.loads(raw) == {"type": 5, "data": {"flags": 0}}
    events = [e for e in module_sink.events() if e["id"] == payload["id"]]
    assert len(events) == 1
    assert open_event(EVENT_KEY, events[0], {COMMAND_RECEIVED})["command"] == "plan"


def test_unsigned_over_http(verify: FunctionProcess) -> None:
    status, _, raw = post(verify.url, b'{"type":1}', {"Content-Type": "application/json"})
    assert status == 401
    assert json.loads(raw) == {"error": "invalid request signature"}


def _raw_request(port: int, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("POST", "/")
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    try:
        for chunk in chunks:
            conn.send(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may stop reading once it has refused the body
    response = conn.getresponse()
    status, body = response.status, response.read()
    conn.close()
    return status, body


def test_oversized_declared_body_gets_413_without_reading_it(verify: FunctionProcess) -> None:
    huge = 64 * 1024 * 1024
    status, body = _raw_request(
        verify.port,
        {"Content-Length": str(huge), "Content-Type": "application/json"},
        [b"{" + b" " * 1024],
    )
    assert status == 413
    assert b"exceeds" in body


def test_oversized_chunked_body_gets_413(verify: FunctionProcess) -> None:
    chunk = b" " * 65536
    frames = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)] + [b"0\r\n\r\n"]
    status, _ = _raw_request(
        verify.port,
        {"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        frames,
    )
    assert status == 413


def test_small_chunked_ping_is_accepted(verify: FunctionProcess) -> None:
    body = b'{"type":1}'
    headers = sign(body) | {"Transfer-Encoding": "chunked"}
    status, raw = _raw_request(verify.port, headers, [b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)])
    assert status == 200
    assert json.loads(raw) == {"type": 1}


def test_command_route_authenticates_over_http(start) -> None:
    route = start("command_route", base_env())
    forged = seal(
        "not-the-key-" * 4, event_type=COMMAND_RECEIVED, source="/x", event_id="1", data={}
    )
    headers, event_body = encode(forged)
    assert post(route.url, event_body, headers)[0] == 401
    # Genuine but not a command: past authentication, refused as malformed.
    headers, event_body = encode(
        seal(EVENT_KEY, event_type=COMMAND_RECEIVED, source="/x", event_id="1", data={})
    )
    assert post(route.url, event_body, headers)[0] == 400


@pytest.mark.parametrize("name", ["workflow_submit", "status_callback"])
def test_other_functions_start_and_authenticate(start, name: str) -> None:
    proc = start(name, base_env())
    status, _, _ = post(proc.url, b"{}", {"Content-Type": "application/json"})
    assert 400 <= status < 500
    if name == "status_callback":
        ok = post(proc.url, b"{}", {"Authorization": f"Bearer {CALLBACK_TOKEN}"})
        assert ok[0] == 400  # authenticated, then refused for the missing fields


@pytest.mark.parametrize(
    ("name", "env", "expected"),
    [
        ("interaction_verify", {}, "discord.public_key (FACTEUR_DISCORD_PUBLIC_KEY): required"),
        ("interaction_verify", base_env(K_SINK="nope"), "K_SINK: must be"),
        (
            "interaction_verify",
            base_env(K_SINK="http://127.0.0.1:9/", FACTEUR_COMMANDS_CATALOG_FILE="/absent.yaml"),
            "cannot read",
        ),
        ("command_route", {}, "events.signing_key (FACTEUR_EVENTS_SIGNING_KEY): required"),
        ("workflow_submit", {"FACTEUR_EVENTS_SIGNING_KEY": "short"}, "at least 32 characters"),
        ("status_callback", {}, "callback.token (FACTEUR_CALLBACK_TOKEN): required"),
    ],
)
def test_bad_config_stops_at_start_with_one_line(name, env, expected) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FACTEUR_")}
    clean.pop("K_SINK", None)
    result = subprocess.run(
        [
            str(BIN / "functions-framework"),
            "--target",
            name,
            "--source",
            str(ROOT / "functions" / name / "main.py"),
            "--port",
            "0",
        ],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(ROOT),
    )
    assert result.returncode == 78
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"facteur {name}: configuration error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_secrets_never_reach_the_logs(start, tmp_path: Path) -> None:
    sink = Sink()
    try:
        verify = start("interaction_verify", base_env(K_SINK=sink.url))
        payload = command("plan")
        body = json.dumps(payload).encode()
        post(verify.url, body, sign(body))
        post(verify.url, body, {"Content-Type": "application/json"})
        sink.status = 500
        post(verify.url, body, sign(body))
        logs = verify.logs()
    finally:
        sink.close()
    for secret in (payload["token"], EVENT_KEY, CALLBACK_TOKEN):
        assert secret not in logs
    assert "hand-off of /plan failed" in logs


def test_python_path_is_not_needed(tmp_path: Path) -> None:
    # Installed as a package, the library imports from anywhere, as a deployed function does.
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import facteur.flows.interaction_verify, facteur.adapters.sessions; print('ok')",
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_oversized_chunked_event_gets_413(start) -> None:
    route = start("command_route", base_env())
    chunk = b" " * 65536
    frames = [b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(40)] + [b"0\r\n\r\n"]
    status, _ = _raw_request(
        route.port,
        {"Transfer-Encoding": "chunked", "Content-Type": "application/cloudevents+json"},
        frames,
    )
    assert status == 413


def test_small_chunked_event_reaches_authentication(start) -> None:
    route = start("command_route", base_env())
    headers, body = encode(
        seal(EVENT_KEY, event_type=COMMAND_RECEIVED, source="/x", event_id="1", data={})
    )
    frame = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    status, raw = _raw_request(route.port, headers | {"Transfer-Encoding": "chunked"}, [frame])
    assert (status, json.loads(raw)["error"]) == (
        400,
        "event data lacks correlation_id or received_at",
    )


@pytest.mark.parametrize(
    "name", ["interaction_verify", "command_route", "workflow_submit", "status_callback"]
)
def test_liveness_and_readiness(start, redis_url: str, name: str) -> None:
    proc = start(name, base_env(FACTEUR_REDIS_URL=redis_url))
    with urllib.request.urlopen(proc.url + "healthz", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    try:
        with urllib.request.urlopen(proc.url + "readyz", timeout=5) as response:
            status, body = response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        status, body = err.code, json.loads(err.read())
    # Redis answers; the sink and Argo of base_env point at a closed port, so not ready.
    checks = body["checks"]
    if "redis" in checks:
        assert checks["redis"] is True
    expected_ready = all(checks.values())
    assert (status, body["ready"]) == ((200, True) if expected_ready else (503, False))
    text = json.dumps(body)
    assert "127.0.0.1" not in text and "redis://" not in text  # never the configuration
    if name in ("interaction_verify", "status_callback"):
        with urllib.request.urlopen(proc.url, timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok"}
