"""decisions/nudge.py: an ApiServerSource event (mode Reference) read strictly, as
knative/eventing's adapter builds it (pkg/adapter/apiserver/events/events.go)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from facteur.decisions import nudge
from facteur.decisions.nudge import ADD, DELETE, NUDGE_TYPES, UPDATE, NotOurs, Nudge, read_nudge
from facteur.errors import InvalidNudge

NS = "agents"
NAME = "plan-1a2b3c"
SUBJECT = f"/apis/argoproj.io/v1alpha1/namespaces/{NS}/workflows/{NAME}"


def ref(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "name": NAME,
        "namespace": NS,
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


def header_of(headers: dict[str, str]) -> Callable[[str], str | None]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return lambda key: lowered.get(key.lower())


def binary(event_type: str = ADD, subject: str | None = SUBJECT) -> dict[str, str]:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": event_type,
        "ce-source": "https://10.96.0.1:443",
        "ce-id": "1",
        "ce-kind": "Workflow",
        "ce-name": NAME,
        "ce-namespace": NS,
        "Content-Type": "application/json",
    }
    if subject is not None:
        headers["ce-subject"] = subject
    return headers


@pytest.mark.parametrize(("event_type", "deleted"), [(ADD, False), (UPDATE, False), (DELETE, True)])
def test_each_reference_type_is_a_nudge(event_type: str, deleted: bool) -> None:
    assert read_nudge(event_type, SUBJECT, ref(), namespace=NS) == Nudge(NS, NAME, deleted)


def test_binary_and_structured_modes_read_the_same() -> None:
    headers = binary(DELETE)
    body = json.dumps(ref()).encode()
    assert nudge.is_nudge(header_of(headers), body)
    assert nudge.read_http(header_of(headers), body, namespace=NS) == Nudge(NS, NAME, True)
    event = {
        "specversion": "1.0",
        "type": DELETE,
        "source": "https://10.96.0.1:443",
        "id": "1",
        "subject": SUBJECT,
        "datacontenttype": "application/json",
        "data": ref(),
    }
    structured = header_of({"Content-Type": "application/cloudevents+json"})
    raw = json.dumps(event).encode()
    assert nudge.is_nudge(structured, raw)
    assert nudge.read_http(structured, raw, namespace=NS) == Nudge(NS, NAME, True)


def test_a_tick_is_not_a_nudge() -> None:
    headers = binary("dev.knative.sources.ping")
    assert not nudge.is_nudge(header_of(headers), b'{"token":"x"}')
    structured = header_of({"Content-Type": "application/cloudevents+json"})
    assert not nudge.is_nudge(structured, b'{"type":"dev.knative.sources.ping"}')
    assert not nudge.is_nudge(structured, b"not json")


def test_the_optional_reference_fields_are_allowed_and_the_subject_may_be_absent() -> None:
    data = ref(uid="0d8f", resourceVersion="42")
    assert read_nudge(UPDATE, None, data, namespace=NS) == Nudge(NS, NAME, False)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (ref(kind="Pod", name="Not_A_Name"), "not an Argo Workflow"),
        (ref(apiVersion="v1"), "not an Argo Workflow"),
        (ref(apiVersion="argoproj.io.evil.example/v1alpha1"), "not an Argo Workflow"),
        (ref(kind="WorkflowTemplate"), "not an Argo Workflow"),
        (ref(namespace="default"), "not facteur's workflow namespace"),
    ],
)
def test_references_to_what_facteur_does_not_watch_are_not_ours(
    data: dict[str, Any], reason: str
) -> None:
    assert read_nudge(ADD, None, data, namespace=NS) == NotOurs(reason)


def test_without_a_configured_namespace_nothing_is_ours() -> None:
    assert isinstance(read_nudge(ADD, SUBJECT, ref(), namespace=None), NotOurs)


@pytest.mark.parametrize(
    ("event_type", "subject", "data", "expected"),
    [
        ("dev.knative.apiserver.resource.add", SUBJECT, ref(), "type must be one of"),
        (ADD, SUBJECT, None, "not an object reference"),
        (ADD, SUBJECT, [ref()], "not an object reference"),
        (ADD, SUBJECT, ref(name=None), "data.name is missing"),
        (ADD, SUBJECT, ref(namespace=""), "data.namespace is missing"),
        (ADD, SUBJECT, ref(kind=7), "data.kind is missing or not a string"),
        (ADD, SUBJECT, ref(extra="x"), "unknown field(s): extra"),
        (ADD, SUBJECT, ref(uid=5), "data.uid is not a string"),
        (ADD, SUBJECT, ref(name="x" * 300), "data.name is not a string of at most"),
        (ADD, SUBJECT, ref(apiVersion="argoproj.io/v1alpha1 "), "not an API version"),
        (ADD, SUBJECT, ref(name="Plan_1"), "not a workflow name"),
        (ADD, SUBJECT, ref(name="p" * 64), "not a workflow name"),
        (ADD, SUBJECT, ref(namespace="Agents"), "not a namespace"),
        (ADD, SUBJECT.replace(NAME, "other"), ref(), "subject does not name"),
        (ADD, 5, ref(), "subject does not name"),
    ],
)
def test_malformed_nudges_are_refused(
    event_type: Any, subject: Any, data: Any, expected: str
) -> None:
    with pytest.raises(InvalidNudge, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_nudge(event_type, subject, data, namespace=NS)


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (binary(), b"x" * (nudge.MAX_BYTES + 1), "over"),
        (binary(), b'{"name": NaN}', "not standard JSON"),
        (binary(), b"[" * 100 + b"]" * 100, "nested deeper"),
        ({**binary(), "Content-Type": "text/plain"}, json.dumps(ref()).encode(), "not application"),
        (
            {"Content-Type": "application/cloudevents+json"},
            json.dumps({"type": ADD, "data": ref(), "pad": "x" * nudge.MAX_BYTES}).encode(),
            "over",
        ),
        (
            {"Content-Type": "application/cloudevents+json"},
            json.dumps({"type": ADD, "datacontenttype": "text/xml", "data": ref()}).encode(),
            "not application/json",
        ),
        ({"Content-Type": "application/cloudevents+json"}, b"[1]", "not a JSON object"),
    ],
    ids=["oversized", "nan", "deep", "text", "structured-oversized", "structured-xml", "array"],
)
def test_malformed_http_nudges_are_refused(
    headers: dict[str, str], body: bytes, expected: str
) -> None:
    with pytest.raises(InvalidNudge, match=expected):
        nudge.read_http(header_of(headers), body, namespace=NS)


_TEXT = st.one_of(
    st.text(max_size=300),
    st.from_regex(r"[a-z0-9][-a-z0-9.]{0,70}", fullmatch=True),
    st.sampled_from([NAME, NS, "Workflow", "argoproj.io/v1alpha1", "", "default"]),
)
_VALUE = st.one_of(_TEXT, st.none(), st.integers(), st.lists(st.integers(), max_size=2))
_DATA = st.one_of(
    st.dictionaries(
        st.sampled_from(["apiVersion", "kind", "name", "namespace", "uid", "x"]), _VALUE
    ),
    _VALUE,
)


@settings(max_examples=400, deadline=None)
@given(event_type=st.sampled_from([*NUDGE_TYPES, "x", ""]), subject=_VALUE, data=_DATA)
def test_fuzz_a_nudge_is_read_refused_or_not_ours_and_never_anything_else(
    event_type: str, subject: Any, data: Any
) -> None:
    try:
        found = read_nudge(event_type, subject, data, namespace=NS)
    except InvalidNudge as err:
        assert len(err.reason) <= 300
        return
    if isinstance(found, Nudge):
        # Only a Workflow of facteur's namespace, with a valid name, is ever looked at.
        assert found.namespace == NS
        assert isinstance(data, dict) and data["kind"] == "Workflow"
        assert data["apiVersion"].startswith("argoproj.io/")
        assert found.name == data["name"] and len(found.name) <= 63
        assert found.deleted == (event_type == DELETE)
    else:
        assert isinstance(found, NotOurs)


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=600), structured=st.booleans())
def test_fuzz_http_bodies_never_raise_anything_but_invalid_nudge(
    body: bytes, structured: bool
) -> None:
    headers = {"Content-Type": "application/cloudevents+json"} if structured else binary()
    with contextlib.suppress(InvalidNudge):
        nudge.read_http(header_of(headers), body, namespace=NS)
