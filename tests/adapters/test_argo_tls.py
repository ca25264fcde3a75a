"""TLS to argo-server: a self-signed certificate, as a stock argo-server serves, on loopback.

A stock argo-server generates its own certificate (util/tls/tls.go in argoproj/argo-workflows),
so out of the box facteur's default (verify against the public CAs) must refuse it, say which
setting fixes it, and /readyz must say false; argo.ca_file with that certificate, or
argo.verify_tls: false, must make every call work, each still valid against Argo's swagger.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from facteur import bootstrap
from facteur.adapters.argo import ArgoClient
from facteur.config import Settings, env_var, load_settings
from facteur.decisions import render
from facteur.decisions.workflow import WorkflowRequest
from facteur.errors import ArgoError, ArgoTLSError, ConfigError
from facteur.health import Readiness, reachable
from tests.helpers.argo_fake import FakeArgo
from tests.helpers.certificates import Certificate, self_signed
from tests.helpers.chain import journey
from tests.helpers.fakes import World

TOKEN = "argo-sa-token-SECRET-5f1c9e27"
NS = "agents"
CA_FILE = env_var("argo.ca_file")
VERIFY_TLS = env_var("argo.verify_tls")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed(tmp_path_factory.mktemp("tls"), "127.0.0.1", "localhost")


@pytest.fixture
def argo(certificate: Certificate) -> Iterator[FakeArgo]:
    with FakeArgo.served(tls=certificate.server_context(), token=TOKEN) as fake:
        yield fake


def _settings(url: str, **env: str) -> Settings:
    return load_settings(
        environ={"FACTEUR_ARGO_SERVER_URL": url, "FACTEUR_ARGO_TOKEN": TOKEN, **env}
    )


def _client(settings: Settings) -> ArgoClient:
    client = bootstrap.argo(settings)
    assert isinstance(client, ArgoClient)
    return client


def _ready(settings: Settings) -> bool:
    return bootstrap.checks(settings, argo=True)["argo"]()


def _every_call(client: ArgoClient, fake: FakeArgo) -> None:
    """Each call facteur makes to Argo, once; the fake checks each against the swagger."""
    request = WorkflowRequest(
        namespace=NS, name="plan-tls1", template="facteur-dispatch", parameters={"action": "plan"}
    )
    assert client.submit(request).created
    assert client.get_workflow(NS, "plan-tls1") is not None
    client.stop(NS, "plan-tls1", message="cancelled")
    client.terminate(NS, "plan-tls1")
    fake.set_phase(NS, "plan-tls1", "Failed")
    client.retry(NS, "plan-tls1")
    assert client.resubmit(NS, "plan-tls1").name.startswith("plan-tls1-")
    assert [r.operation.removeprefix("WorkflowService_") for r in fake.requests if r.operation] == [
        "CreateWorkflow",
        "GetWorkflow",
        "StopWorkflow",
        "TerminateWorkflow",
        "RetryWorkflow",
        "ResubmitWorkflow",
    ]
    assert fake.violations == []


# -- the default: the self-signed certificate is refused, and the fix is named ------------------


def test_by_default_a_self_signed_argo_server_is_refused_naming_the_fix(
    argo: FakeArgo, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(argo.base_url)
    client = _client(settings)

    with (
        caplog.at_level(logging.ERROR, logger="facteur.argo"),
        pytest.raises(ArgoTLSError) as caught,
    ):
        client.get_workflow(NS, "plan-abc123")

    err = caught.value
    assert isinstance(err, ArgoError) and err.tls_misconfigured
    assert (err.status, err.transient) == (None, False)  # no retry can fix a setting
    assert err.reason.startswith("TLS certificate of argo-server not trusted (self-signed")
    assert f"set argo.ca_file ({CA_FILE}) to its CA, or argo.verify_tls: false" in err.reason
    assert TOKEN not in err.reason
    assert argo.requests == []  # nothing was sent: the handshake failed first
    # The log line an operator reads carries the same reason.
    assert [r.getMessage() for r in caplog.records] == [
        f"argo GET /api/v1/workflows/{NS}/plan-abc123 failed: {err.reason}"
    ]
    assert _ready(settings) is False


def test_readiness_says_false_for_an_untrusted_certificate(argo: FakeArgo) -> None:
    settings = _settings(argo.base_url)
    status, body = Readiness(bootstrap.checks(settings, argo=True))()
    assert (status, body) == (503, {"ready": False, "checks": {"argo": False}})


# -- trusting it: argo.ca_file, or (insecure) argo.verify_tls: false ---------------------------


def test_with_its_certificate_as_ca_file_every_call_works(
    argo: FakeArgo, certificate: Certificate
) -> None:
    settings = _settings(argo.base_url, **{CA_FILE: str(certificate.cert)})
    assert settings.argo.ca_file == certificate.cert
    _every_call(_client(settings), argo)
    assert _ready(settings) is True


def test_with_verify_tls_off_every_call_works_and_start_up_says_so_loudly(
    argo: FakeArgo, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(argo.base_url, **{VERIFY_TLS: "false"})
    with caplog.at_level(logging.WARNING, logger="facteur.argo"):
        client = _client(settings)
    (warning,) = caplog.records
    assert warning.levelno == logging.WARNING
    assert "TLS VERIFICATION OFF for argo-server 127.0.0.1 (argo.verify_tls: false)" in (
        warning.getMessage()
    )
    with pytest.warns(Warning):  # urllib3's InsecureRequestWarning, on top
        _every_call(client, argo)
    assert _ready(settings) is True


def test_ca_file_wins_over_verify_tls_off(argo: FakeArgo, tmp_path: Path) -> None:
    # Another CA: verification stays on, so the call fails although verify_tls says false.
    other = self_signed(tmp_path, "127.0.0.1", stem="other-ca")
    settings = _settings(argo.base_url, **{CA_FILE: str(other.cert), VERIFY_TLS: "false"})
    with pytest.raises(ArgoTLSError):
        _client(settings).get_workflow(NS, "plan-abc123")
    assert _ready(settings) is False


# -- the other TLS mistakes ---------------------------------------------------------------------


def test_a_certificate_for_another_host_names_server_url(tmp_path: Path) -> None:
    # What a stock argo-server's own certificate is: valid for localhost only.
    localhost_only = self_signed(tmp_path, "localhost", stem="localhost-only")
    with FakeArgo.served(tls=localhost_only.server_context()) as fake:
        settings = _settings(fake.base_url, **{CA_FILE: str(localhost_only.cert)})
        with pytest.raises(ArgoTLSError) as caught:
            _client(settings).get_workflow(NS, "plan-abc123")
        assert _ready(settings) is False
    assert caught.value.reason.startswith("TLS certificate of argo-server does not match its host")
    assert "address mismatch, certificate is not valid for '127.0.0.1'" in caught.value.reason
    assert "set argo.server_url to a host name the certificate covers" in caught.value.reason


def test_https_to_a_plain_http_server_is_a_handshake_failure() -> None:
    with FakeArgo.served() as fake:
        url = fake.base_url.replace("http://", "https://")
        settings = _settings(url)
        with pytest.raises(ArgoTLSError) as caught:
            _client(settings).get_workflow(NS, "plan-abc123")
        assert _ready(settings) is False
    assert caught.value.reason.startswith("TLS handshake with argo-server failed (")
    assert "argo.server_url" in caught.value.reason


def test_a_ca_file_removed_after_start_up_is_named(
    argo: FakeArgo, certificate: Certificate, tmp_path: Path
) -> None:
    copy = tmp_path / "ca.crt"
    copy.write_bytes(certificate.cert.read_bytes())
    settings = _settings(argo.base_url, **{CA_FILE: str(copy)})
    client = _client(settings)
    copy.unlink()  # the ConfigMap behind the mount deleted, say
    with pytest.raises(ArgoTLSError) as caught:
        client.get_workflow(NS, "plan-abc123")
    assert caught.value.reason == f"argo.ca_file ({CA_FILE}) cannot be read (OSError)"
    assert _ready(settings) is False


def test_readiness_gives_up_on_a_server_that_never_answers_the_handshake() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # connects (the kernel accepts), never speaks TLS
        port = listener.getsockname()[1]
        check = reachable(f"https://127.0.0.1:{port}", timeout=0.3, tls=True)
        started = time.monotonic()
        assert check() is False
        assert time.monotonic() - started < 2


def test_plain_http_and_tcp_only_checks_do_no_handshake() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        # http:// with trust settings, and https:// without any: a TCP connect, as before.
        assert reachable(f"http://127.0.0.1:{port}", tls=True)() is True
        assert reachable(f"https://127.0.0.1:{port}")() is True


# -- what the user reads ------------------------------------------------------------------------


def test_the_user_reads_a_configuration_problem_not_argos_refusal(
    argo: FakeArgo, caplog: pytest.LogCaptureFixture
) -> None:
    world = World()
    assert world.router().handle(journey("plan")).result == "requested"
    (requested,) = world.requested()
    client = ArgoClient(server_url=argo.base_url, token=TOKEN, backoff_factor=0)
    with caplog.at_level(logging.INFO, logger="facteur"):
        outcome = world.submitter(argo=client).handle(requested)
    assert (outcome.status, outcome.result) == (200, "failed")
    assert world.discord.last.content == render.not_started("plan", render.ARGO_NOT_TRUSTED)
    assert "Argo refused" not in world.discord.last.content
    assert argo.requests == []
    # The audit line keeps the exact fix for the operator.
    (audit,) = [r for r in caplog.records if r.getMessage() == "workflow.submit_failed"]
    assert audit.transient is False  # type: ignore[attr-defined]
    assert f"set argo.ca_file ({CA_FILE})" in audit.reason  # type: ignore[attr-defined]


# -- settings -----------------------------------------------------------------------------------


def test_the_settings_and_their_variables() -> None:
    assert (CA_FILE, VERIFY_TLS) == ("FACTEUR_ARGO_CA_FILE", "FACTEUR_ARGO_VERIFY_TLS")
    defaults = Settings().argo
    assert (defaults.ca_file, defaults.verify_tls) == (None, True)


@pytest.mark.parametrize("problem", ["missing", "directory", "no certificate"])
def test_an_unusable_ca_file_stops_start_up(tmp_path: Path, problem: str) -> None:
    path = tmp_path / "ca.crt"
    if problem == "directory":
        path.mkdir()
    elif problem == "no certificate":
        path.write_text("-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={CA_FILE: str(path)})
    message = str(caught.value)
    assert message.startswith(f"argo.ca_file ({CA_FILE}): ")
    expected = {
        "missing": f"cannot read {path} (No such file or directory)",
        "directory": f"cannot read {path} (Is a directory)",
        "no certificate": f"{path} holds no PEM certificate",
    }[problem]
    assert expected in message


def test_a_function_with_a_missing_ca_file_stops_at_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The functions stop at start-up with that one line (bootstrap.boot, exit 78).
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(SystemExit) as caught:
        bootstrap.boot(
            "workflow_submit",
            environ={
                "FACTEUR_EVENTS_SIGNING_KEY": "k" * 32,
                "FACTEUR_REDIS_URL": "redis://127.0.0.1:9/0",
                "FACTEUR_DISCORD_APPLICATION_ID": "123456789012345678",
                "FACTEUR_ARGO_SERVER_URL": "https://argo.example:2746",
                "FACTEUR_ARGO_NAMESPACE": NS,
                CA_FILE: str(missing),
            },
        )
    assert caught.value.code == 78
    assert capsys.readouterr().err == (
        f"facteur workflow_submit: configuration error: argo.ca_file ({CA_FILE}): "
        f"cannot read {missing} (No such file or directory)\n"
    )
