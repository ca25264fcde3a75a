"""facteur.adapters.argo's gates, logs and mutexes against the swagger-checking fake Argo Server.

What the fake does here is Argo's own (workflow/util/util.go updateSuspendedNode, util/logs):
set and resume reach only a Running Suspend node named by its ID, an output parameter is set
once, and the log API answers a stream of JSON lines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from facteur.adapters.argo import (
    LOG_LIMIT_BYTES,
    LOG_LINE_MAX,
    LOG_READ_BYTES,
    NODE_FIELDS,
)
from facteur.decisions.workflow import NodeState, WorkflowRequest
from facteur.errors import ArgoError
from tests.adapters import test_argo as base
from tests.adapters.test_argo import NS, TOKEN, make_client
from tests.helpers.argo_fake import POD_NAME_FORMAT, FakeArgo

RUN = "plan-1234567890123456789"
DEFINITIONS = "#/definitions/io.argoproj.workflow.v1alpha1."


# The client tests' fixtures, used here as they are.
argo, served = base.argo, base.served


def running(fake: FakeArgo, name: str = RUN, **kwargs: Any) -> None:
    fake.add_workflow(NS, name, **kwargs)
    fake.set_phase(NS, name, "Running")


def valid(fake: FakeArgo, definition: str, body: Any) -> list[str]:
    return fake.contract.check_instance({"$ref": DEFINITIONS + definition}, body, definition)


def requests_to(fake: FakeArgo, suffix: str) -> int:
    return sum(r.path.endswith(suffix) for r in fake.requests)


# -- nodes -----------------------------------------------------------------------------------


def test_get_nodes_reads_gates_and_pods(argo: FakeArgo) -> None:
    running(argo)
    gate = argo.add_suspend_node(NS, RUN, "approve", duration="1h30m")
    pod_node, pod = argo.add_pod_node(NS, RUN, "build", template="run-tests", lines=["ok"])

    found = {node.id: node for node in make_client(argo).get_nodes(NS, RUN)}

    stored = argo.node(NS, RUN, gate)
    assert found[gate] == NodeState(
        id=gate,
        display_name="approve",
        type="Suspend",
        phase="Running",
        name=f"{RUN}.approve",
        template_name="approve",
        started_at=stored["startedAt"],
        supplied=("decision",),
        choices=(("decision", ("approve", "reject")),),
        suspend_seconds=5400.0,
    )
    assert found[pod_node].pod_name == pod == f"{RUN}-run-tests-{pod_node.rsplit('-', 1)[1]}"
    assert (found[pod_node].type, found[pod_node].template_name) == ("Pod", "run-tests")
    assert found[pod_node].supplied == () and found[pod_node].suspend_seconds is None
    assert found[RUN].pod_name is None  # the entrypoint is a Steps node: no pod
    [request] = argo.requests
    assert request.query == {"fields": NODE_FIELDS}
    assert request.problems == []


def test_pod_names_follow_the_runs_format(argo: FakeArgo) -> None:
    running(argo, annotations={POD_NAME_FORMAT: "v1"})
    node_id, pod = argo.add_pod_node(NS, RUN, "build")
    [node] = [n for n in make_client(argo).get_nodes(NS, RUN) if n.id == node_id]
    assert node.pod_name == pod == node_id


def test_a_template_ref_and_an_inline_template_are_found(argo: FakeArgo) -> None:
    running(argo)
    workflow = argo.workflows[(NS, RUN)]
    # An inline workflow's templates are in spec.templates, not in the stored spec.
    workflow["spec"]["templates"] = [{"name": "wait", "suspend": {"duration": "2m"}}]
    gate = argo.add_suspend_node(NS, RUN, "hold", template="wait", parameter=None)
    del workflow["status"]["storedWorkflowTemplateSpec"]
    node_id, _ = argo.add_pod_node(NS, RUN, "lint", template="ignored")
    node = workflow["status"]["nodes"][node_id]
    node["templateRef"] = {"name": "shared-steps", "template": "lint-all"}

    found = {node.id: node for node in make_client(argo).get_nodes(NS, RUN)}

    assert found[gate].suspend_seconds == 120.0
    assert (found[gate].supplied, found[gate].choices) == ((), ())
    # Argo names the pod by the referenced template (GetTemplateFromNode).
    assert found[node_id].template_name == "lint-all"
    assert (found[node_id].pod_name or "").startswith(f"{RUN}-lint-all-")


def test_get_nodes_keeps_only_what_it_can_trust(argo: FakeArgo) -> None:
    long_choice = "x" * 300
    nodes = {
        "ok-1": {
            "id": "ok-1",
            "name": "n" * 2000,
            "type": "Suspend",
            "phase": "Running",
            "templateName": "nowhere",
            "inputs": {
                "parameters": [
                    {"name": "pick", "enum": ["a", long_choice, "", "b"]},
                    {"name": "bad name!", "enum": ["c"]},
                    {"name": "no-enum", "value": "v"},
                ]
            },
            "outputs": {
                "parameters": [
                    {"name": "pick", "valueFrom": {"supplied": {}}},
                    {"name": "done", "value": "1"},
                    {"name": "computed", "valueFrom": {"path": "/tmp/x"}},
                ]
            },
        },
        "ok-2": {"id": "ok-2", "name": "ok.pod", "type": "Pod", "templateName": "Has_Upper"},
    }
    argo.queue("GET", 200, {"metadata": {}, "spec": {}, "status": {"nodes": nodes}})

    found = {node.id: node for node in make_client(argo).get_nodes(NS, RUN)}

    gate = found["ok-1"]
    assert gate.choices == (("pick", ("a", "b")),)  # too long or empty: left out, never cut
    assert gate.supplied == ("pick",)
    assert len(gate.name) == 1024
    assert gate.suspend_seconds is None  # no template of that name
    # A template name that makes no valid pod name gives none, rather than a wrong one.
    assert found["ok-2"].pod_name is None


def test_get_nodes_survives_answers_of_the_wrong_shape(argo: FakeArgo) -> None:
    shapes: list[Any] = [
        {"status": {"nodes": {"a": "not a node", "b": {"type": 3, "inputs": {"parameters": 1}}}}},
        {"status": {"nodes": []}},
        {"status": "x", "spec": {"templates": "y"}},
        [],
    ]
    client = make_client(argo)
    for shape in shapes:
        argo.queue("GET", 200, shape)
        nodes = client.get_nodes(NS, RUN)
        assert all(isinstance(node, NodeState) for node in nodes)
    argo.violations.clear()  # the fake saw it send what Argo never would


# -- waiting for a mutex ---------------------------------------------------------------------


def test_a_run_waiting_for_a_mutex_names_its_holder(argo: FakeArgo) -> None:
    running(argo, "plan-1")
    argo.add_workflow(NS, "plan-2")
    argo.wait_behind(NS, "plan-2", "plan-1")

    state = make_client(argo).get_workflow(NS, "plan-2")

    assert state is not None
    assert (state.phase, state.waiting_for) == ("Pending", "plan-1")
    assert "status.synchronization" in argo.requests[0].query["fields"].split(",")
    holder = make_client(argo).get_workflow(NS, "plan-1")
    assert holder is not None and holder.waiting_for is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (f"{NS}/plan-1", "plan-1"),
        (f"{NS}/plan-1/plan-1-3411409221", "plan-1"),  # a step of plan-1 holds it
        ("plan-1", "plan-1"),  # an older controller's bare name
        (f"{NS}/plan-2", None),  # the run itself
        (f"{NS}/plan-2/plan-2-1", None),
        ("elsewhere/plan-1", None),  # not a run of this namespace
        (f"{NS}/Plan_1", None),
        (f"{NS}/a/b/c", None),
        ("", None),
    ],
)
def test_waiting_for_reads_the_holder_key(argo: FakeArgo, key: str, expected: str | None) -> None:
    argo.add_workflow(NS, "plan-2")
    argo.wait_behind(NS, "plan-2", "unused", key=key)
    state = make_client(argo).get_workflow(NS, "plan-2")
    assert state is not None and state.waiting_for == expected


# -- set and resume --------------------------------------------------------------------------


def test_set_then_resume_one_gate(argo: FakeArgo) -> None:
    running(argo)
    gate = argo.add_suspend_node(NS, RUN, "approve")
    other = argo.add_suspend_node(NS, RUN, "second", template="approve")
    client = make_client(argo)

    client.set_node(NS, RUN, gate, message="approved by ada", outputs={"decision": "approve"})
    after_set = argo.node(NS, RUN, gate)
    client.resume_node(NS, RUN, gate)

    assert after_set["phase"] == "Running"
    assert after_set["message"] == "approved by ada"
    assert after_set["outputs"]["parameters"] == [{"name": "decision", "value": "approve"}]
    assert argo.node(NS, RUN, gate)["phase"] == "Succeeded"
    assert argo.node(NS, RUN, other)["phase"] == "Running"  # only the node selected
    set_body, resume_body = argo.bodies("PUT")
    ident = {"name": RUN, "namespace": NS, "nodeFieldSelector": f"id={gate}"}
    assert set_body == {
        **ident,
        "message": "approved by ada",
        "outputParameters": json.dumps({"decision": "approve"}),
    }
    assert resume_body == ident
    assert valid(argo, "WorkflowSetRequest", set_body) == []
    assert valid(argo, "WorkflowResumeRequest", resume_body) == []
    operations = [r.operation for r in argo.requests]
    assert operations == ["WorkflowService_SetWorkflow", "WorkflowService_ResumeWorkflow"]
    assert all(r.problems == [] for r in argo.requests)


def test_a_set_parameter_reads_back_as_an_output_and_no_longer_as_supplied(argo: FakeArgo) -> None:
    running(argo)
    gate = argo.add_suspend_node(NS, RUN, "approve")
    client = make_client(argo)
    [before] = [n for n in client.get_nodes(NS, RUN) if n.id == gate]
    assert (before.supplied, before.outputs) == (("decision",), ())
    client.set_node(NS, RUN, gate, outputs={"decision": "reject"})
    [after] = [n for n in client.get_nodes(NS, RUN) if n.id == gate]
    assert (after.supplied, after.outputs, after.phase) == (
        (),
        (("decision", "reject"),),
        "Running",
    )


def test_a_message_alone_or_outputs_alone_can_be_set(argo: FakeArgo) -> None:
    running(argo)
    gate = argo.add_suspend_node(NS, RUN, "approve")
    client = make_client(argo)
    client.set_node(NS, RUN, gate, message="seen by ada")
    client.set_node(NS, RUN, gate, outputs={"decision": "reject"})
    first, second = argo.bodies("PUT")
    assert "outputParameters" not in first and "message" not in second
    node = argo.node(NS, RUN, gate)
    assert node["message"] == "seen by ada"
    assert node["outputs"]["parameters"][0]["value"] == "reject"


def test_a_second_set_of_a_parameter_is_refused_once(argo: FakeArgo) -> None:
    running(argo)
    gate = argo.add_suspend_node(NS, RUN, "approve")
    client = make_client(argo)
    client.set_node(NS, RUN, gate, outputs={"decision": "approve"})

    with pytest.raises(ArgoError) as caught:
        client.set_node(NS, RUN, gate, outputs={"decision": "reject"})

    assert caught.value.status == 500
    assert "cannot set output parameter 'decision'" in caught.value.reason
    assert "already set" in caught.value.reason
    assert requests_to(argo, "/set") == 2  # a 500 here is Argo's answer, not replayed
    assert argo.node(NS, RUN, gate)["outputs"]["parameters"][0]["value"] == "approve"


def test_a_parameter_the_node_does_not_expect_is_refused(argo: FakeArgo) -> None:
    running(argo)
    gate = argo.add_suspend_node(NS, RUN, "approve")
    with pytest.raises(ArgoError) as caught:
        make_client(argo).set_node(NS, RUN, gate, outputs={"verdict": "yes"})
    assert "node is not expecting output parameter 'verdict'" in caught.value.reason


def test_resume_of_a_resumed_gate_is_refused(argo: FakeArgo) -> None:
    running(argo)
    gate = argo.add_suspend_node(NS, RUN, "approve")
    client = make_client(argo)
    client.resume_node(NS, RUN, gate)

    with pytest.raises(ArgoError) as caught:
        client.resume_node(NS, RUN, gate)
    with pytest.raises(ArgoError) as late:
        client.set_node(NS, RUN, gate, message="too late")

    for error in (caught.value, late.value):
        assert error.status == 500
        assert f"no suspend nodes matching nodeFieldSelector: id={gate}" in error.reason
    assert requests_to(argo, "/resume") == 2
    assert requests_to(argo, "/set") == 1


def test_only_suspend_nodes_can_be_set_or_resumed(argo: FakeArgo) -> None:
    running(argo)
    node_id, _ = argo.add_pod_node(NS, RUN, "build")
    client = make_client(argo)
    for call in (
        lambda: client.resume_node(NS, RUN, node_id),
        lambda: client.set_node(NS, RUN, node_id, message="x"),
        lambda: client.resume_node(NS, RUN, f"{RUN}-1"),  # no such node
    ):
        with pytest.raises(ArgoError) as caught:
            call()
        assert "currently, set only targets suspend nodes" in caught.value.reason
    assert argo.node(NS, RUN, node_id)["phase"] == "Running"


def test_set_and_resume_of_an_unknown_run_are_404(argo: FakeArgo) -> None:
    client = make_client(argo)
    for call in (
        lambda: client.resume_node(NS, "ghost", "ghost-1"),
        lambda: client.set_node(NS, "ghost", "ghost-1", message="x"),
    ):
        with pytest.raises(ArgoError) as caught:
            call()
        assert (caught.value.status, caught.value.transient) == (404, False)


def test_set_and_resume_are_not_replayed_once_sent(served: FakeArgo) -> None:
    running(served)
    gate = served.add_suspend_node(NS, RUN, "approve")
    client = make_client(served)
    served.queue("PUT", drop=True, path="/resume$")
    with pytest.raises(ArgoError) as caught:
        client.resume_node(NS, RUN, gate)
    assert caught.value.transient is True
    served.queue("PUT", 503, path="/set$")
    with pytest.raises(ArgoError) as refused:
        client.set_node(NS, RUN, gate, message="x")
    assert refused.value.status == 503
    assert (requests_to(served, "/resume"), requests_to(served, "/set")) == (1, 1)


def test_set_needs_something_to_set(argo: FakeArgo) -> None:
    empties: list[dict[str, Any]] = [{}, {"message": ""}, {"outputs": {}}]
    for empty in empties:
        with pytest.raises(ArgoError):
            make_client(argo).set_node(NS, RUN, f"{RUN}-1", **empty)
    assert argo.requests == []


HOSTILE_NODE_IDS: list[Any] = [
    "",
    f"{RUN}-1,phase=Running",
    f"{RUN}-1,id!=x",
    "id=x",
    "x!=y",
    "a\\,b",
    "Plan-1",
    "plan 1",
    "plan-1\n",
    "-plan",
    "n" * 254,
    None,
    7,
]


@pytest.mark.parametrize("node_id", HOSTILE_NODE_IDS)
def test_hostile_node_ids_are_refused_before_any_request(argo: FakeArgo, node_id: Any) -> None:
    client = make_client(argo)
    with pytest.raises(ArgoError) as caught:
        client.set_node(NS, RUN, node_id, message="x")
    with pytest.raises(ArgoError):
        client.resume_node(NS, RUN, node_id)
    assert (caught.value.status, caught.value.transient) == (None, False)
    assert argo.requests == []


def test_output_values_must_be_strings(argo: FakeArgo) -> None:
    with pytest.raises(ArgoError):
        make_client(argo).set_node(NS, RUN, f"{RUN}-1", outputs={"decision": 1})  # type: ignore[dict-item]
    assert argo.requests == []


# -- logs --------------------------------------------------------------------------------------


def test_logs_are_the_last_lines_of_the_pod(argo: FakeArgo) -> None:
    running(argo)
    lines = [f'line {n}: ✓ {{json}} "quoted"' for n in range(100)]
    _, pod = argo.add_pod_node(NS, RUN, "build", lines=lines)

    found = make_client(argo).logs(NS, RUN, pod, tail_lines=40)

    assert found == lines[-40:]
    [request] = argo.requests
    assert request.operation == "WorkflowService_WorkflowLogs"
    assert request.path == f"/api/v1/workflows/{NS}/{RUN}/log"
    assert request.query == {
        "podName": pod,
        "logOptions.container": "main",
        "logOptions.tailLines": "40",
        "logOptions.limitBytes": str(LOG_LIMIT_BYTES),
    }
    assert request.problems == []


def test_logs_over_a_real_socket(served: FakeArgo) -> None:
    running(served)
    _, pod = served.add_pod_node(NS, RUN, "build", lines=["one", "two"], container="step")
    client = make_client(served)
    assert client.logs(NS, RUN, pod, container="step", tail_lines=5) == ["one", "two"]
    assert client.logs(NS, RUN, pod, tail_lines=5) == []  # no container "main" in that pod


def test_logs_of_a_pod_without_lines_or_unknown_to_argo_are_empty(argo: FakeArgo) -> None:
    running(argo)
    _, pod = argo.add_pod_node(NS, RUN, "build")
    client = make_client(argo)
    assert client.logs(NS, RUN, pod) == []
    assert client.logs(NS, RUN, f"{RUN}-build-1") == []  # Argo matches no pod: no entries


def test_tail_lines_are_clamped(argo: FakeArgo) -> None:
    running(argo)
    _, pod = argo.add_pod_node(NS, RUN, "build", lines=[str(n) for n in range(3)])
    client = make_client(argo)
    assert client.logs(NS, RUN, pod, tail_lines=0) == ["2"]
    client.logs(NS, RUN, pod, tail_lines=10**6)
    assert [r.query["logOptions.tailLines"] for r in argo.requests] == ["1", "1000"]


def test_argo_cuts_logs_at_limit_bytes(argo: FakeArgo) -> None:
    running(argo)
    lines = ["y" * 2000] * 1000  # 2 MB: over the 1 MiB the kubelet is asked for
    _, pod = argo.add_pod_node(NS, RUN, "build", lines=lines)

    found = make_client(argo).logs(NS, RUN, pod, tail_lines=1000)

    assert sum(len(line) + 1 for line in found) <= LOG_LIMIT_BYTES + 1
    assert all(len(line) <= LOG_LINE_MAX for line in found)
    assert len(found) == LOG_LIMIT_BYTES // 2001 + 1  # the last one cut by the kubelet


def test_a_stream_longer_than_the_bound_is_read_no_further(argo: FakeArgo) -> None:
    # A server that ignores tailLines and limitBytes: the client stops reading at its bound.
    entry = {"result": {"content": "z" * 3000, "podName": "p"}}
    row = (json.dumps(entry) + "\n").encode()
    stream = row * (LOG_READ_BYTES // len(row) * 2)
    argo.queue("GET", 200, stream, path="/log$")

    found = make_client(argo).logs(NS, RUN, "p", tail_lines=40)

    assert found == ["z" * 3000] * 40  # whole lines only: the cut one is dropped


def test_a_very_long_line_is_cut(argo: FakeArgo) -> None:
    running(argo)
    _, pod = argo.add_pod_node(NS, RUN, "build", lines=["a" * 50_000, "short"])
    found = make_client(argo).logs(NS, RUN, pod)
    assert found == ["a" * LOG_LINE_MAX, "short"]


def test_a_pod_gone_in_the_stream_is_404(argo: FakeArgo) -> None:
    running(argo)
    _, pod = argo.add_pod_node(NS, RUN, "build", lines=["x"])
    argo.pod_gone(NS, pod, how="stream")
    with pytest.raises(ArgoError) as caught:
        make_client(argo).logs(NS, RUN, pod)
    assert (caught.value.status, caught.value.transient) == (404, False)
    assert f'pods "{pod}" not found' in caught.value.reason


def test_a_pod_gone_as_http_404(argo: FakeArgo) -> None:
    running(argo)
    _, pod = argo.add_pod_node(NS, RUN, "build", lines=["x"])
    argo.pod_gone(NS, pod, how="http")
    with pytest.raises(ArgoError) as caught:
        make_client(argo).logs(NS, RUN, pod)
    assert (caught.value.status, caught.value.transient) == (404, False)
    assert f'pods "{pod}" not found' in caught.value.reason


def test_a_pod_gone_as_argo_usually_says_it_is_no_lines(argo: FakeArgo) -> None:
    running(argo)
    _, pod = argo.add_pod_node(NS, RUN, "build", lines=["x"])
    argo.pod_gone(NS, pod, how="empty")
    assert make_client(argo).logs(NS, RUN, pod) == []


@pytest.mark.parametrize(
    ("error", "status", "transient"),
    [
        ({"grpc_code": 5, "http_code": 404, "message": "pods not found"}, 404, False),
        ({"grpc_code": 14, "http_code": 503, "message": "unavailable"}, 503, True),
        ({"grpc_code": 7, "http_code": 403, "message": "forbidden"}, 403, False),
        ({"message": "broken"}, 502, False),
    ],
)
def test_an_error_entry_after_some_lines_raises(
    argo: FakeArgo, error: dict[str, Any], status: int, transient: bool
) -> None:
    rows = [{"result": {"content": "before", "podName": "p"}}, {"error": error}]
    argo.queue("GET", 200, "".join(json.dumps(row) + "\n" for row in rows), path="/log$")
    with pytest.raises(ArgoError) as caught:
        make_client(argo).logs(NS, RUN, "p")
    assert (caught.value.status, caught.value.transient) == (status, transient)
    assert caught.value.reason == error["message"]


def test_logs_of_an_unknown_workflow_are_404(argo: FakeArgo) -> None:
    with pytest.raises(ArgoError) as caught:
        make_client(argo).logs(NS, "ghost", "ghost-1")
    assert (caught.value.status, caught.value.transient) == (404, False)
    assert 'workflows.argoproj.io "ghost" not found' in caught.value.reason


def test_an_answer_that_is_not_a_stream_is_an_error(argo: FakeArgo) -> None:
    argo.queue("GET", 200, "<html>login</html>\n", path="/log$")
    with pytest.raises(ArgoError) as caught:
        make_client(argo).logs(NS, RUN, "p")
    assert caught.value.status == 200 and caught.value.transient is False


def test_the_token_stays_out_of_log_errors(argo: FakeArgo) -> None:
    body = {"error": {"grpc_code": 7, "http_code": 403, "message": f"token {TOKEN} is denied"}}
    argo.queue("GET", 200, json.dumps(body) + "\n", path="/log$")
    argo.queue("GET", 401, {"code": 16, "message": f"bad token {TOKEN}"}, path="/log$")
    client = make_client(argo)
    for _ in range(2):
        with pytest.raises(ArgoError) as caught:
            client.logs(NS, RUN, "p")
        assert TOKEN not in f"{caught.value} {caught.value!r}"
        assert "[token]" in caught.value.reason


@pytest.mark.parametrize(
    "overrides",
    [
        {"pod_name": "Pod_1"},
        {"pod_name": "p,q"},
        {"pod_name": ""},
        {"pod_name": "p" * 254},
        {"container": "main;rm"},
        {"container": "a.b"},
        {"container": "c" * 64},
        {"tail_lines": "40"},
        {"tail_lines": True},
        {"namespace": "Agents"},
        {"name": "ghost/../x"},
    ],
)
def test_bad_log_arguments_are_refused_before_any_request(
    argo: FakeArgo, overrides: dict[str, Any]
) -> None:
    arguments: dict[str, Any] = {"namespace": NS, "name": RUN, "pod_name": "p"} | overrides
    namespace, name, pod = (
        arguments.pop("namespace"),
        arguments.pop("name"),
        arguments.pop("pod_name"),
    )
    with pytest.raises(ArgoError):
        make_client(argo).logs(namespace, name, pod, **arguments)
    assert argo.requests == []


def test_the_fake_answers_log_entries_its_swagger_allows(argo: FakeArgo) -> None:
    running(argo)
    _, pod = argo.add_pod_node(NS, RUN, "build", lines=["one", "two"])
    answer = requests.get(
        f"{argo.base_url}/api/v1/workflows/{NS}/{RUN}/log",
        params={"podName": pod, "logOptions.container": "main"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    rows = answer.content.decode().splitlines()
    assert [json.loads(row) for row in rows] == [
        {"result": {"content": "one", "podName": pod}},
        {"result": {"content": "two", "podName": pod}},
    ]
    route = argo.contract.route("GET", f"/api/v1/workflows/{NS}/{RUN}/log")
    assert not isinstance(route, str)
    assert argo.contract.check_response(route, 200, json.loads(rows[0])) == []
    # What the fake would flag in its own entries: a key the stream schema does not name.
    assert argo.contract.check_response(route, 200, {"result": {"pod": "p"}}) != []


# -- mutexes ---------------------------------------------------------------------------------


def test_a_mutex_goes_into_the_create_body(argo: FakeArgo) -> None:
    client = make_client(argo)
    client.submit(WorkflowRequest(NS, "plan-1", "facteur-plan", mutex="plan-ada"))
    client.submit(WorkflowRequest(NS, "plan-2", "facteur-plan"))

    with_mutex, without = argo.bodies("POST")
    assert with_mutex["workflow"]["spec"]["synchronization"] == {"mutexes": [{"name": "plan-ada"}]}
    assert "synchronization" not in without["workflow"]["spec"]
    assert valid(argo, "WorkflowCreateRequest", with_mutex) == []
    stored = argo.workflow(NS, "plan-1")
    assert stored is not None
    assert stored["spec"]["synchronization"] == {"mutexes": [{"name": "plan-ada"}]}


def test_the_fake_checks_synchronization_against_swagger(argo: FakeArgo) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    spec = {"workflowTemplateRef": {"name": "t"}, "synchronization": {"mutex": {"name": "m"}}}
    body: dict[str, Any] = {"namespace": NS, "workflow": {"metadata": {"name": "w"}, "spec": spec}}
    url = f"{argo.base_url}/api/v1/workflows/{NS}"
    answer = requests.post(url, json=body, headers=headers, timeout=5)
    assert answer.status_code == 400
    assert any("synchronization.mutex" in v for v in argo.violations), argo.violations
    argo.violations.clear()


@pytest.mark.parametrize("mutex", ["", "Plan", "plan_ada", "a/b", "a.b", "m" * 64, "plan\n"])
def test_a_mutex_that_is_not_a_label_is_refused(argo: FakeArgo, mutex: str) -> None:
    with pytest.raises(ArgoError):
        make_client(argo).submit(WorkflowRequest(NS, "plan-1", "facteur-plan", mutex=mutex))
    assert argo.requests == []
