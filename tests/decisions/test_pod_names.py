"""Pod names as Argo's controller makes them, and suspend durations as it reads them, checked
against values computed here from the definitions (FNV-1a, Go's duration grammar)."""

from __future__ import annotations

import pytest

from facteur.decisions.pod_names import (
    MAX_PREFIX,
    POD_NAME_FORMAT_ANNOTATION,
    fnv32a,
    pod_name,
    pod_name_version,
    suspend_seconds,
)

WORKFLOW = "plan-1234567890123456789"


def fnv1a_by_hand(text: str) -> int:
    """FNV-1a, 32 bits, from its definition: for each byte, xor then multiply, mod 2**32."""
    offset_basis, prime = 2166136261, 16777619
    value = offset_basis
    for byte in text.encode("utf-8"):
        value ^= byte
        value = (value * prime) % (1 << 32)
    return value


@pytest.mark.parametrize(
    ("text", "expected"),
    # The FNV specification's own test vectors (draft-eastlake-fnv, FNV-1a 32).
    [("", 0x811C9DC5), ("a", 0xE40C292C), ("foobar", 0xBF9CF968)],
)
def test_fnv32a_matches_the_published_vectors(text: str, expected: int) -> None:
    assert fnv32a(text) == expected == fnv1a_by_hand(text)


@pytest.mark.parametrize(
    "node_name",
    [f"{WORKFLOW}[0].build", f"{WORKFLOW}.lint", f"{WORKFLOW}[1].déploiement ✓", "x" * 600],
)
def test_fnv32a_hashes_the_utf8_bytes(node_name: str) -> None:
    assert fnv32a(node_name) == fnv1a_by_hand(node_name)


def test_v1_is_the_node_id() -> None:
    node_id = f"{WORKFLOW}-{fnv1a_by_hand(WORKFLOW + '.build')}"
    assert pod_name(WORKFLOW, f"{WORKFLOW}.build", "build", node_id, "v1") == node_id


def test_v2_is_workflow_template_and_hash_of_the_node_name() -> None:
    node_name = f"{WORKFLOW}[0].build"
    expected = f"{WORKFLOW}-run-tests-{fnv1a_by_hand(node_name)}"
    assert pod_name(WORKFLOW, node_name, "run-tests", "ignored", "v2") == expected
    assert pod_name(WORKFLOW, node_name, "run-tests", "ignored") == expected  # v2 by default


def test_v2_without_a_template_is_workflow_and_hash() -> None:
    node_name = f"{WORKFLOW}.inline"
    expected = f"{WORKFLOW}-{fnv1a_by_hand(node_name)}"
    assert pod_name(WORKFLOW, node_name, None, "x") == expected
    assert pod_name(WORKFLOW, node_name, "", "x") == expected


def test_v2_of_a_workflow_that_is_one_pod_is_the_workflows_name() -> None:
    assert pod_name(WORKFLOW, WORKFLOW, "main", WORKFLOW) == WORKFLOW


def test_v2_cuts_a_long_prefix_to_242_characters() -> None:
    workflow, template = "w" * 63, "t" * 250
    node_name = f"{workflow}.step"
    name = pod_name(workflow, node_name, template, "x")
    prefix = f"{workflow}-{template}"[:242]
    assert MAX_PREFIX == 242
    assert name == f"{prefix}-{fnv1a_by_hand(node_name)}"
    assert len(name) <= 253


@pytest.mark.parametrize(
    ("annotations", "version"),
    [
        ({POD_NAME_FORMAT_ANNOTATION: "v1"}, "v1"),
        ({POD_NAME_FORMAT_ANNOTATION: "v2"}, "v2"),
        ({POD_NAME_FORMAT_ANNOTATION: "v3"}, "v2"),  # Argo falls back to its default
        ({"other": "v1"}, "v2"),
        ({}, "v2"),
        (None, "v2"),
        ("v1", "v2"),
    ],
)
def test_the_pod_name_format_comes_from_the_annotation(annotations: object, version: str) -> None:
    assert pod_name_version(annotations) == version


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [
        ("30", 30.0),  # no unit: seconds
        ("+30", 30.0),
        ("0", 0.0),
        ("2m", 120.0),
        ("6h", 21600.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("1.5h", 5400.0),
        (".5m", 30.0),
        ("500ms", 0.5),
        ("1m500ms", 60.5),
        ("-10s", 0.0),  # in the past: Argo resumes at once
        ("-30", 0.0),
    ],
)
def test_durations_argo_reads(duration: str, seconds: float) -> None:
    assert suspend_seconds(duration) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "duration",
    [
        "bad",
        "",
        "m",
        ".m",
        "1d",  # Go has no day unit
        "1e3",
        " 30",
        "30 ",
        "1h 30m",
        "99999999999999999999",  # neither an int Argo reads nor a duration
        "3000000h",  # more than a Go Duration holds
        "٣٠",  # Arabic-Indic digits: not Go's
        "1" * 100,
        None,
        30,
    ],
)
def test_what_argo_cannot_read_is_none(duration: object) -> None:
    assert suspend_seconds(duration) is None
