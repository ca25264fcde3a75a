"""facteur.adapters.argo against a fake Argo Server that checks requests with its swagger.json.

Most tests run through `responses`; those about retries after timeouts or dropped connections
run against the fake on loopback, because `responses` skips urllib3's connection-level retries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from facteur.adapters.argo import NODE_FIELDS, RETRY_AFTER_MAX_SECONDS, ArgoClient
from facteur.decisions.workflow import Submitted, WorkflowRequest, WorkflowState
from facteur.errors import ArgoError
from tests.helpers.argo_fake import FakeArgo
from tests.helpers.servers import free_port

TOKEN = "argo-sa-token-SECRET-5f1c9e27"
NS = "agents"
CREATE = "WorkflowService_CreateWorkflow"


def make_client(fake: FakeArgo, **overrides: Any) -> ArgoClient:
    options: dict[str, Any] = {
        "server_url": fake.base_url,
        "token": TOKEN,
        "backoff_factor": 0,  # retries without sleeping keep the suite fast
        "timeout": 2.0,
    }
    options.update(overrides)
    return ArgoClient(**options)


def submit(client: ArgoClient, name: str = "plan-abc123", **overrides: Any) -> Submitted:
    options: dict[str, Any] = {
        "name": name,
        "template": "facteur-plan",
        "parameters": {"objective": "ship it"},
        "labels": {"facteur.dev/command": "plan"},
        "annotations": {"facteur.dev/correlation-id": "c-1"},
    }
    options.update(overrides)
    return client.submit(WorkflowRequest(NS, **options))


def creates(fake: FakeArgo) -> int:
    return sum(r.operation == CREATE for r in fake.requests)


@pytest.fixture
def argo() -> Iterator[FakeArgo]:
    with FakeArgo.mocked(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def served() -> Iterator[FakeArgo]:
    with FakeArgo.served(token=TOKEN) as fake:
        yield fake


@pytest.fixture(params=["mocked", "served"])
def any_argo(request: pytest.FixtureRequest) -> Iterator[FakeArgo]:
    """Both transports: status retries must behave the same through either."""
    factory = FakeArgo.mocked if request.param == "mocked" else FakeArgo.served
    with factory(token=TOKEN) as fake:
        yield fake


# -- create --------------------------------------------------------------------------------


def test_create_uses_the_structured_endpoint_with_a_strictly_valid_body(argo: FakeArgo) -> None:
    result = submit(make_client(argo), service_account="agent-runner")

    uid = argo.workflow(NS, "plan-abc123")["metadata"]["uid"]
    assert result == Submitted(name="plan-abc123", namespace=NS, uid=uid, created=True)
    [request] = argo.requests
    assert (request.method, request.path, request.operation) == (
        "POST",
        f"/api/v1/workflows/{NS}",
        CREATE,
    )
    assert request.problems == []
    assert request.json == {
        "namespace": NS,
        "workflow": {
            "metadata": {
                "name": "plan-abc123",
                "namespace": NS,
                "labels": {"facteur.dev/command": "plan"},
                "annotations": {"facteur.dev/correlation-id": "c-1"},
            },
            "spec": {
                "workflowTemplateRef": {"name": "facteur-plan"},
                "arguments": {"parameters": [{"name": "objective", "value": "ship it"}]},
                "serviceAccountName": "agent-runner",
            },
        },
    }
    # Checked again here, not only inside the fake: no key unknown to WorkflowCreateRequest.
    schema = {"$ref": "#/definitions/io.argoproj.workflow.v1alpha1.WorkflowCreateRequest"}
    assert argo.contract.check_instance(schema, request.json, "body") == []


def test_parameter_values_arrive_intact_one_parameter_each_in_order(argo: FakeArgo) -> None:
    parameters = {
        "objective": "a=1,b=2\nmodelName=evil, x=y",
        "zeta": "ünïcödé ✓ 🚀 — 日本語",
        "alpha": "  spaces kept  ",
        "quotes": "\"double\" 'single' \\ back\tslash",
        "empty": "",
        "Mixed_Case": "k1=v1,k2=v2",
    }
    submit(make_client(argo), parameters=parameters)

    sent = argo.bodies("POST")[0]["workflow"]["spec"]["arguments"]["parameters"]
    assert sent == [{"name": k, "value": v} for k, v in parameters.items()]
    stored = argo.workflow(NS, "plan-abc123")["spec"]["arguments"]["parameters"]
    assert [p["name"] for p in stored] == list(parameters)  # no parameter smuggled in


def test_labels_and_annotations_pass_through_and_empty_ones_are_left_out(argo: FakeArgo) -> None:
    labels = {"facteur.dev/user": "800000000000000100", "app.kubernetes.io/managed-by": "facteur"}
    annotations = {"facteur.dev/objective": "multi\nline, with = signs"}
    client = make_client(argo)
    submit(client, labels=labels, annotations=annotations)
    submit(client, name="plan-bare", labels={}, annotations={}, parameters={})

    full, bare = (body["workflow"] for body in argo.bodies("POST"))
    assert full["metadata"]["labels"] == labels
    assert full["metadata"]["annotations"] == annotations
    assert bare["metadata"] == {"name": "plan-bare", "namespace": NS}
    assert "arguments" not in bare["spec"]


def test_service_account_and_cluster_scope_only_when_asked(argo: FakeArgo) -> None:
    client = make_client(argo)
    submit(client, name="wf-plain")
    submit(client, name="wf-sa", service_account="runner")
    submit(client, name="wf-cluster", cluster_scope=True)

    plain, with_sa, cluster = (body["workflow"]["spec"] for body in argo.bodies("POST"))
    assert "serviceAccountName" not in plain
    assert plain["workflowTemplateRef"] == {"name": "facteur-plan"}
    assert with_sa["serviceAccountName"] == "runner"
    assert cluster["workflowTemplateRef"] == {"name": "facteur-plan", "clusterScope": True}


def test_existing_name_answers_409_and_counts_as_success(argo: FakeArgo) -> None:
    client = make_client(argo)
    first = submit(client)
    again = submit(client)

    assert first.created and first.uid
    assert again == Submitted(name="plan-abc123", namespace=NS, uid=None, created=False)
    assert len(argo.workflows) == 1
    assert creates(argo) == 2


# -- retries -------------------------------------------------------------------------------


def test_503_twice_then_200_creates_one_workflow_in_three_attempts(any_argo: FakeArgo) -> None:
    any_argo.queue("POST", 503, times=2)

    result = submit(make_client(any_argo))

    assert result.created
    assert creates(any_argo) == 3
    assert len(any_argo.workflows) == 1
    assert all(r.problems == [] for r in any_argo.requests)


def test_429_is_retried(any_argo: FakeArgo) -> None:
    any_argo.queue("POST", 429, {"code": 8, "message": "too many requests"})

    assert submit(make_client(any_argo)).created
    assert creates(any_argo) == 2


def test_503_for_ever_gives_a_transient_error_after_max_attempts(any_argo: FakeArgo) -> None:
    any_argo.queue("POST", 503, {"code": 14, "message": "argo-server is starting"}, times=None)

    with pytest.raises(ArgoError) as caught:
        submit(make_client(any_argo, max_attempts=3))

    assert caught.value.transient is True
    assert caught.value.status == 503
    assert "argo-server is starting" in caught.value.reason
    assert creates(any_argo) == 3
    assert any_argo.workflows == {}


def test_timeout_before_argo_acted_then_success(served: FakeArgo) -> None:
    # Argo stalls and would answer 504 too late: nothing was created, the retry creates it.
    served.queue("POST", 504, delay=0.8)

    result = submit(make_client(served, timeout=0.3))

    assert result.created is True
    assert creates(served) == 2
    assert len(served.workflows) == 1


def test_timeout_after_argo_acted_then_409_is_success(served: FakeArgo) -> None:
    # Argo created it but answered late; the deterministic name turns the replay into a 409.
    served.queue("POST", delay=0.8)

    result = submit(make_client(served, timeout=0.3))

    assert result == Submitted(name="plan-abc123", namespace=NS, uid=None, created=False)
    assert creates(served) == 2
    assert len(served.workflows) == 1


def test_dropped_connection_is_retried(served: FakeArgo) -> None:
    served.queue("POST", drop=True)

    assert submit(make_client(served)).created
    assert creates(served) == 2


def test_retry_after_is_respected(served: FakeArgo) -> None:
    served.queue("POST", 503, headers={"Retry-After": "1"})

    started = time.monotonic()
    assert submit(make_client(served)).created
    assert time.monotonic() - started >= 0.9
    assert creates(served) == 2


def test_retry_after_is_capped(argo: FakeArgo) -> None:
    retry = make_client(argo)._retry
    assert retry.parse_retry_after("21600") == RETRY_AFTER_MAX_SECONDS
    # The cap survives urllib3's copy on each attempt.
    assert retry.new(total=1).parse_retry_after("3600") == RETRY_AFTER_MAX_SECONDS


# -- errors that are not retried -----------------------------------------------------------


def test_400_for_a_missing_template_is_final_after_one_attempt(served: FakeArgo) -> None:
    message = 'workflowtemplates.argoproj.io "facteur-plan" not found'
    served.queue("POST", 400, {"code": 3, "message": message})

    with pytest.raises(ArgoError) as caught:
        submit(make_client(served))

    assert caught.value.transient is False
    assert caught.value.status == 400
    assert message in caught.value.reason
    assert creates(served) == 1


@pytest.mark.parametrize("cluster_scope", [False, True])
def test_404_for_a_missing_template_is_final_too(cluster_scope: bool) -> None:
    # What Argo's code suggests it really answers: the Kubernetes NotFound, mapped to 404.
    fake_argo = FakeArgo.mocked(token=TOKEN, templates={"other"}, cluster_templates=set())
    with fake_argo as fake, pytest.raises(ArgoError) as caught:
        submit(make_client(fake), cluster_scope=cluster_scope)

    kind = "clusterworkflowtemplates" if cluster_scope else "workflowtemplates"
    assert caught.value.status == 404
    assert caught.value.transient is False
    assert f'{kind}.argoproj.io "facteur-plan" not found' in caught.value.reason
    assert creates(fake) == 1


@pytest.mark.parametrize("status", [401, 403, 422, 501])
def test_other_client_errors_are_not_retried(served: FakeArgo, status: int) -> None:
    served.queue("POST", status, {"code": 7, "message": "permission denied"})

    with pytest.raises(ArgoError) as caught:
        submit(make_client(served))

    assert (caught.value.status, caught.value.transient) == (status, False)
    assert "permission denied" in caught.value.reason
    assert creates(served) == 1


def test_reason_is_one_bounded_line(argo: FakeArgo) -> None:
    argo.queue("POST", 400, {"code": 3, "message": "bad\nthing " + "x" * 1000})

    with pytest.raises(ArgoError) as caught:
        submit(make_client(argo))

    assert "\n" not in caught.value.reason
    assert len(caught.value.reason) <= 300


def test_error_without_argo_body_names_the_status(argo: FakeArgo) -> None:
    argo.queue("POST", 403, "<html>Forbidden by the proxy</html>")

    with pytest.raises(ArgoError) as caught:
        submit(make_client(argo))

    assert caught.value.status == 403
    assert caught.value.reason.endswith("HTTP 403")


def test_a_200_that_is_not_json_is_an_error(argo: FakeArgo) -> None:
    argo.queue("POST", 200, "<html>Log in</html>")

    with pytest.raises(ArgoError) as caught:
        submit(make_client(argo))

    assert caught.value.transient is False
    assert caught.value.__context__ is None


def test_redirects_are_not_followed(argo: FakeArgo) -> None:
    argo.queue("POST", 302, "", headers={"Location": "https://sso.example/login"})

    with pytest.raises(ArgoError) as caught:
        submit(make_client(argo))

    assert (caught.value.status, caught.value.transient) == (302, False)
    assert "redirect" in caught.value.reason
    assert len(argo.requests) == 1


def test_unreachable_server_is_transient() -> None:
    client = ArgoClient(
        server_url=f"http://127.0.0.1:{free_port()}", token=TOKEN, backoff_factor=0, timeout=1
    )

    with pytest.raises(ArgoError) as caught:
        client.get_workflow(NS, "plan-abc123")

    assert caught.value.transient is True
    assert caught.value.status is None
    assert caught.value.reason.endswith("ConnectionError")


def test_tls_failures_are_not_transient() -> None:
    class BadCertificate(requests.Session):
        def request(self, *args: Any, **kwargs: Any) -> requests.Response:
            raise requests.exceptions.SSLError(f"certificate verify failed; {kwargs['headers']}")

    client = ArgoClient(server_url="https://argo.test", token=TOKEN, session=BadCertificate())

    with pytest.raises(ArgoError) as caught:
        client.get_workflow(NS, "plan-abc123")

    assert caught.value.transient is False
    assert TOKEN not in str(caught.value)


# -- get -----------------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["Pending", "Running", "Succeeded", "Failed", "Error"])
def test_get_workflow_reports_phase_and_times(argo: FakeArgo, phase: str) -> None:
    argo.add_workflow(NS, "plan-abc123")
    argo.set_phase(NS, "plan-abc123", phase, message="step 2 of 3")
    stored = argo.workflow(NS, "plan-abc123")

    state = make_client(argo).get_workflow(NS, "plan-abc123")

    assert state == WorkflowState(
        name="plan-abc123",
        namespace=NS,
        phase=phase,
        started_at=stored["status"].get("startedAt"),
        finished_at=stored["status"].get("finishedAt"),
        message="step 2 of 3",
        entry_phase=phase,
        created_at=stored["metadata"]["creationTimestamp"],
    )
    assert (state.finished_at is not None) == (phase in ("Succeeded", "Failed", "Error"))
    [request] = argo.requests
    assert request.operation == "WorkflowService_GetWorkflow"
    # Only the fields WorkflowState reads: of status.nodes, only the entrypoint's phase.
    fields = request.query["fields"].split(",")
    assert "status.phase" in fields
    assert [f for f in fields if f.startswith("status.nodes")] == ["status.nodes.plan-abc123.phase"]


def test_get_workflow_reads_the_entrypoint_while_the_exit_handler_runs(argo: FakeArgo) -> None:
    argo.add_workflow(NS, "plan-abc123")
    argo.set_phase(NS, "plan-abc123", "Running", entry="Failed")
    state = make_client(argo).get_workflow(NS, "plan-abc123")
    assert state is not None
    assert (state.phase, state.entry_phase) == ("Running", "Failed")


def test_get_workflow_before_the_controller_saw_it(argo: FakeArgo) -> None:
    make_client(argo).submit(WorkflowRequest(NS, "fresh", "t"))
    state = make_client(argo).get_workflow(NS, "fresh")
    assert state is not None
    assert (state.phase, state.started_at, state.finished_at, state.message) == (None,) * 4


def test_get_unknown_workflow_is_none(argo: FakeArgo) -> None:
    assert make_client(argo).get_workflow(NS, "never-submitted") is None
    assert argo.requests[0].operation == "WorkflowService_GetWorkflow"


def test_get_forbidden_is_an_error(argo: FakeArgo) -> None:
    argo.queue("GET", 403)
    with pytest.raises(ArgoError) as caught:
        make_client(argo).get_workflow(NS, "plan-abc123")
    assert (caught.value.status, caught.value.transient) == (403, False)


# -- what a forgotten session is rebuilt from ------------------------------------------------

FACTEURS = {"app.kubernetes.io/managed-by": "facteur", "facteur.dev/ref": "0a1b2c3d4e5f607182"}


def test_get_workflow_carries_only_facteurs_labels_and_annotations(argo: FakeArgo) -> None:
    argo.add_workflow(
        NS,
        "plan-abc123",
        labels={**FACTEURS, "team": "infra"},
        annotations={"facteur.dev/channel-id": "800000000000000200", "note": "x"},
    )
    argo.set_phase(NS, "plan-abc123", "Running")
    state = make_client(argo).get_workflow(NS, "plan-abc123")
    assert state is not None
    assert state.labels == FACTEURS  # not the controller's phase label, nor anyone else's
    assert state.annotations == {"facteur.dev/channel-id": "800000000000000200"}
    assert state.created_at is not None
    fields = argo.requests[0].query["fields"].split(",")
    assert {"metadata.labels", "metadata.annotations", "metadata.creationTimestamp"} <= set(fields)


def test_list_unfinished_asks_for_facteurs_unfinished_runs_only(argo: FakeArgo) -> None:
    for name, phase in [("plan-1", "Running"), ("plan-2", "Succeeded"), ("plan-3", None)]:
        argo.add_workflow(NS, name, phase, labels=FACTEURS)
    argo.add_workflow(NS, "other-1", "Running", labels={"team": "infra"})
    argo.add_workflow("elsewhere", "plan-9", "Running", labels=FACTEURS)
    found = make_client(argo).list_unfinished(NS, limit=10)
    assert sorted(state.name for state in found) == ["plan-1", "plan-3"]
    assert all(state.namespace == NS and state.labels == FACTEURS for state in found)
    [request] = argo.requests
    assert (request.operation, request.path) == (
        "WorkflowService_ListWorkflows",
        f"/api/v1/workflows/{NS}",
    )
    assert request.query == {
        "listOptions.labelSelector": (
            "app.kubernetes.io/managed-by=facteur,workflows.argoproj.io/completed!=true"
        ),
        "listOptions.limit": "10",
        # Narrow: no status.nodes, no spec, nothing the rebuild does not read.
        "fields": ",".join(
            f"items.{path}"
            for path in (
                "metadata.name",
                "metadata.namespace",
                "metadata.creationTimestamp",
                "metadata.labels",
                "metadata.annotations",
                "status.phase",
                "status.startedAt",
                "status.finishedAt",
                "status.message",
            )
        ),
    }
    assert make_client(argo).list_unfinished(NS, limit=1)[0].name in ("plan-1", "plan-3")


def test_find_by_ref_selects_by_the_label(argo: FakeArgo) -> None:
    argo.add_workflow(NS, "plan-1", "Failed", labels=FACTEURS)
    argo.add_workflow(NS, "plan-1-x7k2p", "Running", labels=FACTEURS)
    argo.add_workflow(
        NS, "plan-2", "Running", labels={**FACTEURS, "facteur.dev/ref": "ffff0000ffff"}
    )
    found = make_client(argo).find_by_ref(NS, FACTEURS["facteur.dev/ref"])
    assert sorted(state.name for state in found) == ["plan-1", "plan-1-x7k2p"]
    assert argo.requests[0].query["listOptions.labelSelector"] == (
        "app.kubernetes.io/managed-by=facteur,facteur.dev/ref=0a1b2c3d4e5f607182"
    )


@pytest.mark.parametrize("ref", ["-older_ref1", "abc", "a,b=c,x!=y"])
def test_find_by_ref_sends_no_selector_it_cannot_build(argo: FakeArgo, ref: str) -> None:
    assert make_client(argo).find_by_ref(NS, ref) == []
    assert argo.requests == []


def test_an_empty_list_may_come_back_as_null(argo: FakeArgo) -> None:
    # Sent verbatim (as Go marshals a nil slice), past the fake's own check of its answers.
    null = '{"metadata": {}, "items": null}'
    argo.queue("GET", 200, null, path=f"/api/v1/workflows/{NS}$")
    assert make_client(argo).list_unfinished(NS) == []


def test_the_fake_refuses_a_malformed_selector() -> None:
    with FakeArgo.mocked(token=TOKEN) as fake:
        response = requests.get(
            f"{fake.base_url}/api/v1/workflows/{NS}",
            params={"listOptions.labelSelector": "facteur.dev/ref=-x", "listOptions.limit": "a"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=5,
        )
        assert response.status_code == 400
        assert len(fake.violations) == 2
        fake.violations.clear()  # seen: not a failure of this test


# -- actions -------------------------------------------------------------------------------


def test_actions_send_their_request_definitions(argo: FakeArgo) -> None:
    argo.add_workflow(NS, "plan-abc123", "Running")
    client = make_client(argo)

    client.stop(NS, "plan-abc123", message="stopped from Discord by ada")
    assert argo.workflow(NS, "plan-abc123")["spec"]["shutdown"] == "Stop"
    client.terminate(NS, "plan-abc123")
    assert argo.workflow(NS, "plan-abc123")["spec"]["shutdown"] == "Terminate"
    argo.set_phase(NS, "plan-abc123", "Failed")
    client.retry(NS, "plan-abc123")
    again = client.resubmit(NS, "plan-abc123")

    operations = [r.operation.removeprefix("WorkflowService_") for r in argo.requests]
    assert operations == ["StopWorkflow", "TerminateWorkflow", "RetryWorkflow", "ResubmitWorkflow"]
    assert [r.path.rsplit("/", 1)[-1] for r in argo.requests] == [
        "stop",
        "terminate",
        "retry",
        "resubmit",
    ]
    ident = {"name": "plan-abc123", "namespace": NS}
    assert argo.bodies("PUT") == [
        {**ident, "message": "stopped from Discord by ada"},
        ident,
        ident,
        ident,
    ]
    definitions = ["WorkflowStopRequest", "WorkflowTerminateRequest", "WorkflowRetryRequest"]
    for body, name in zip(
        argo.bodies("PUT"), [*definitions, "WorkflowResubmitRequest"], strict=True
    ):
        schema = {"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{name}"}
        assert argo.contract.check_instance(schema, body, name) == []
    assert again.created and again.name.startswith("plan-abc123-") and again.name != "plan-abc123"
    assert argo.workflow(NS, again.name) is not None


def test_stop_without_message_sends_none(argo: FakeArgo) -> None:
    argo.add_workflow(NS, "plan-abc123", "Running")
    make_client(argo).stop(NS, "plan-abc123")
    assert argo.bodies("PUT") == [{"name": "plan-abc123", "namespace": NS}]


@pytest.mark.parametrize("action", ["stop", "terminate", "retry", "resubmit"])
def test_actions_on_unknown_workflows_fail_finally(argo: FakeArgo, action: str) -> None:
    with pytest.raises(ArgoError) as caught:
        getattr(make_client(argo), action)(NS, "ghost")
    assert (caught.value.status, caught.value.transient) == (404, False)
    assert 'workflows.argoproj.io "ghost" not found' in caught.value.reason


def test_retry_of_a_running_workflow_is_refused(argo: FakeArgo) -> None:
    argo.add_workflow(NS, "plan-abc123", "Running")
    with pytest.raises(ArgoError) as caught:
        make_client(argo).retry(NS, "plan-abc123")
    assert caught.value.status == 400
    assert "Cannot retry a workflow in phase Running" in caught.value.reason


def test_idempotent_actions_are_replayed_after_a_dropped_connection(served: FakeArgo) -> None:
    served.add_workflow(NS, "plan-abc123", "Running")
    served.queue("PUT", drop=True)

    make_client(served).stop(NS, "plan-abc123")

    assert len(served.requests) == 2


def test_resubmit_is_not_replayed_once_sent(served: FakeArgo) -> None:
    # Each resubmit creates a new, server-named workflow: a replay could run it twice.
    served.add_workflow(NS, "plan-abc123", "Failed")
    served.queue("PUT", drop=True, path="/resubmit$")

    with pytest.raises(ArgoError) as caught:
        make_client(served).resubmit(NS, "plan-abc123")

    assert caught.value.transient is True
    assert len(served.requests) == 1
    served.queue("PUT", 503, path="/resubmit$")
    with pytest.raises(ArgoError):
        make_client(served).resubmit(NS, "plan-abc123")
    assert len(served.requests) == 2


# -- input validation ----------------------------------------------------------------------

BAD_NAMESPACES = ["", "Agents", "-agents", "agents-", "a_b", "a.b", "a/b", "a" * 64, "agents\n"]
BAD_NAMES = ["", "Plan", "plan_1", "plan/../x", "plan 1", "-plan", "plan-", "p" * 64, "plan\n"]


def _calls(namespace: str, name: str) -> list[Any]:
    def create(client: ArgoClient) -> Any:
        return client.submit(WorkflowRequest(namespace, name, "t"))

    return [
        create,
        lambda c: c.get_workflow(namespace, name),
        lambda c: c.stop(namespace, name),
        lambda c: c.terminate(namespace, name),
        lambda c: c.retry(namespace, name),
        lambda c: c.resubmit(namespace, name),
    ]


@pytest.mark.parametrize("namespace", BAD_NAMESPACES)
def test_bad_namespaces_are_refused_before_sending(argo: FakeArgo, namespace: str) -> None:
    for call in _calls(namespace, "plan-abc123"):
        with pytest.raises(ArgoError) as caught:
            call(make_client(argo))
        assert (caught.value.transient, caught.value.status) == (False, None)
    assert argo.requests == []


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_workflow_names_are_refused_before_sending(argo: FakeArgo, name: str) -> None:
    for call in _calls(NS, name):
        with pytest.raises(ArgoError) as caught:
            call(make_client(argo))
        assert caught.value.transient is False
    assert argo.requests == []


def test_longest_valid_names_are_accepted(argo: FakeArgo) -> None:
    client = make_client(argo)
    client.get_workflow("n" * 63, "w" * 63)
    client.get_workflow(NS, "plan.v2-abc")
    assert len(argo.requests) == 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"template": "Not_A_Name"},
        {"service_account": "has space"},
        {"parameters": {"count": 3}},
        {"labels": {"team": None}},
        {"annotations": {"n": 1.5}},
    ],
)
def test_bad_template_account_or_values_are_refused(argo: FakeArgo, overrides: dict) -> None:
    with pytest.raises(ArgoError) as caught:
        submit(make_client(argo), **overrides)
    assert caught.value.transient is False
    assert argo.requests == []


# -- the token -----------------------------------------------------------------------------


def test_bearer_token_on_every_request(argo: FakeArgo) -> None:
    argo.add_workflow(NS, "plan-abc123", "Failed")
    client = make_client(argo, token=f"  Bearer {TOKEN}\n")  # as mounted secrets often read
    submit(client, name="other")
    client.get_workflow(NS, "plan-abc123")
    client.retry(NS, "plan-abc123")

    assert [r.headers["Authorization"] for r in argo.requests] == [f"Bearer {TOKEN}"] * 3


def test_no_authorization_header_without_a_token() -> None:
    with FakeArgo.mocked() as fake:
        make_client(fake, token=None).get_workflow(NS, "plan-abc123")
        make_client(fake, token="").get_workflow(NS, "plan-abc123")
    assert all("Authorization" not in r.headers for r in fake.requests)


def test_wrong_token_is_refused_by_the_fake(argo: FakeArgo) -> None:
    with pytest.raises(ArgoError) as caught:
        make_client(argo, token="not-the-token").get_workflow(NS, "plan-abc123")
    assert (caught.value.status, caught.value.transient) == (401, False)


def test_token_with_control_characters_is_refused_without_echoing_it(argo: FakeArgo) -> None:
    with pytest.raises(ValueError) as caught:
        make_client(argo, token=f"{TOKEN}\r\nX-Injected: 1")
    assert TOKEN not in str(caught.value)


def test_token_never_reaches_logs_or_errors(
    served: FakeArgo, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # urllib3's and requests' debug lines too
    served.add_workflow(NS, "plan-abc123", "Running")
    client = make_client(served, timeout=0.3, max_attempts=2)
    errors: list[ArgoError] = []

    submit(client)
    client.get_workflow(NS, "plan-abc123")
    scripted = [
        (503, None, 0.0),
        (403, {"code": 7, "message": f"token {TOKEN} lacks get on workflows"}, 0.0),
        (504, None, 0.8),
    ]
    for status, body, delay in scripted:
        served.queue("GET", status, body, delay=delay, times=None)
        try:
            client.get_workflow(NS, "plan-abc123")
        except ArgoError as err:
            errors.append(err)
        served.clear_queue()
    dead = ArgoClient(server_url=f"http://127.0.0.1:{free_port()}", token=TOKEN, backoff_factor=0)
    try:
        dead.stop(NS, "plan-abc123")
    except ArgoError as err:
        errors.append(err)

    assert len(errors) == 4
    assert caplog.records  # something was logged, and none of it holds the token
    assert TOKEN not in caplog.text
    for err in errors:
        assert TOKEN not in f"{err} {err!r} {err.reason}"
        assert err.__cause__ is None and err.__context__ is None  # no chained request details


def test_a_shared_session_keeps_its_other_adapters(argo: FakeArgo) -> None:
    session = requests.Session()
    other = session.get_adapter("https://elsewhere.example/")
    make_client(argo, session=session).get_workflow(NS, "plan-abc123")
    assert session.get_adapter("https://elsewhere.example/") is other
    assert session.get_adapter(argo.base_url + "/api/v1/x").max_retries.total == 3


# -- the fake itself -----------------------------------------------------------------------


def test_the_fake_refuses_what_argo_would_not_understand(argo: FakeArgo) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    url = argo.base_url + "/api/v1/workflows/"
    good_workflow = {"metadata": {"name": "w"}, "spec": {"workflowTemplateRef": {"name": "t"}}}
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", url + NS, {"namespace": NS, "workflow": good_workflow, "dryRun": True}, "dryRun"),
        (
            "POST",
            url + NS,
            {
                "namespace": NS,
                "workflow": {
                    "metadata": {"name": "w"},
                    "spec": {"workflowTemplateRef": {"name": "t", "clusterscope": True}},
                },
            },
            "clusterscope",
        ),
        (
            "POST",
            url + NS,
            {
                "namespace": NS,
                "workflow": {
                    "metadata": {"name": "w"},
                    "spec": {"arguments": {"parameters": [{"name": "n", "value": 3}]}},
                },
            },
            "is not of type 'string'",
        ),
        ("POST", url + NS, {"namespace": "other", "workflow": good_workflow}, "!= path namespace"),
        ("PUT", url + NS + "/w/stop", {"name": "w", "namespace": NS, "reason": "x"}, "reason"),
        ("PUT", url + NS + "/w/stop", {"name": "v", "namespace": NS}, "!= path name"),
        ("PUT", url + NS + "/w/explode", {}, "no path template"),
        ("PATCH", url + NS + "/w", {}, "PATCH is not an operation"),
        ("GET", url + NS + "/w?listOptions.limit=1", None, "listOptions.limit"),
    ]
    for method, target, body, expected in cases:
        argo.violations.clear()
        answer = requests.request(method, target, json=body, headers=headers, timeout=5)
        assert answer.status_code == 400, (method, target)
        assert any(expected in v for v in argo.violations), (expected, argo.violations)
    # requests encodes every path itself; a raw request shows the segment check.
    argo.violations.clear()
    assert argo.handle("GET", f"/api/v1/workflows/{NS}/w[0]", headers, b"").status == 400
    assert any("not percent-encoded" in v for v in argo.violations)
    argo.violations.clear()
    assert argo.workflows == {}


def test_the_fake_checks_its_own_scripted_answers(argo: FakeArgo) -> None:
    argo.queue("GET", 200, {"metadata": {"name": "w"}, "spec": {}, "statuss": {}})
    make_client(argo).get_workflow(NS, "w")
    assert any("statuss" in v for v in argo.violations)
    argo.violations.clear()


def test_get_workflow_reads_progress_and_the_estimate(argo: FakeArgo) -> None:
    argo.add_workflow(NS, "plan-abc123")
    argo.set_phase(NS, "plan-abc123", "Running")
    status = argo.workflows[(NS, "plan-abc123")]["status"]  # as the controller writes it
    status.update(progress="3/7", estimatedDuration=120)
    state = make_client(argo).get_workflow(NS, "plan-abc123")
    assert state is not None
    assert (state.progress, state.estimated_duration) == ("3/7", 120.0)
    # What is not Argo's "N/M", or not a sane number of seconds, is not shown.
    status.update(progress="3 of 7", estimatedDuration=-5)
    state = make_client(argo).get_workflow(NS, "plan-abc123")
    assert state is not None
    assert (state.progress, state.estimated_duration) == (None, None)


def test_get_nodes_reads_the_steps_display_names_and_phases(argo: FakeArgo) -> None:
    argo.add_workflow(NS, "plan-abc123")
    argo.set_phase(NS, "plan-abc123", "Running")
    nodes = argo.workflows[(NS, "plan-abc123")]["status"]["nodes"]
    nodes["plan-abc123-1"] = {
        "id": "plan-abc123-1",
        "name": "plan-abc123.build",
        "displayName": "build",
        "type": "Pod",
        "phase": "Failed",
        "message": "exit code 2",
    }
    found = make_client(argo).get_nodes(NS, "plan-abc123")
    [build] = [n for n in found if n.id == "plan-abc123-1"]
    assert (build.display_name, build.type, build.phase, build.message) == (
        "build",
        "Pod",
        "Failed",
        "exit code 2",
    )
    [request] = [r for r in argo.requests if r.query.get("fields") == NODE_FIELDS]
    assert request.operation == "WorkflowService_GetWorkflow"
    assert make_client(argo).get_nodes(NS, "gone") == []
