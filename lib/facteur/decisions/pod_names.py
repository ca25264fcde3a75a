"""What Argo names a step's pod, and how long a suspend step waits by itself. Pure.

Written from Argo's rules (workflow/util/pod_name.go GeneratePodName, and v1alpha1
ParseStringToDuration), not from its code: the log API wants a pod's name, which a workflow's
status does not hold, and a suspend node's deadline is its start plus its template's duration.
"""

from __future__ import annotations

import re

# What a workflow carries to pick its pod-name format (common.AnnotationKeyPodNameVersion).
POD_NAME_FORMAT_ANNOTATION = "workflows.argoproj.io/pod-name-format"
V1, V2 = "v1", "v2"
# Kubernetes allows 253 characters; Argo keeps 10 for the hash and cuts the prefix to 242.
_MAX_NAME = 253
_HASH_ROOM = 10
MAX_PREFIX = _MAX_NAME - _HASH_ROOM - 1

_FNV32_OFFSET = 2166136261
_FNV32_PRIME = 16777619


def fnv32a(text: str) -> int:
    """FNV-1a, 32 bits, over the UTF-8 bytes of `text` (Go's hash/fnv New32a)."""
    value = _FNV32_OFFSET
    for byte in text.encode("utf-8"):
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def pod_name_version(annotations: object) -> str:
    """The run's pod-name format: its annotation when that says v1 or v2, else Argo's default.

    The controller may be started with POD_NAMES=v1, which no workflow shows; facteur assumes
    the default then, as Argo's own UI does for a workflow without the annotation.
    """
    if isinstance(annotations, dict) and annotations.get(POD_NAME_FORMAT_ANNOTATION) == V1:
        return V1
    return V2


def pod_name(
    workflow: str, node_name: str, template_name: str | None, node_id: str, version: str = V2
) -> str:
    """The pod of a Pod node, as Argo's controller names it.

    v1: the node ID. v2: the workflow's name for the node named as the workflow (a workflow
    that is one pod), else "<workflow>[-<template>]" cut to 242 characters, "-", and the
    FNV-1a hash of the node's full name in decimal.
    """
    if version == V1:
        return node_id
    if node_name == workflow:
        return workflow
    prefix = f"{workflow}-{template_name}" if template_name else workflow
    return f"{prefix[:MAX_PREFIX]}-{fnv32a(node_name)}"


# Go's time.ParseDuration: an optional sign, then one or more <number><unit>.
_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_GO_DURATION = re.compile(r"[-+]?(?:[0-9]*(?:\.[0-9]*)?(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+")
_INTEGER = re.compile(r"[-+]?[0-9]+")
# A Go Duration is an int64 of nanoseconds; Argo cannot mean more than that.
MAX_SECONDS = (2**63 - 1) / 1e9
# Long enough for any real duration; bounds the regex's work on hostile text.
_MAX_TEXT = 64


def suspend_seconds(duration: object) -> float | None:
    """A suspend template's `duration` in seconds ("30": seconds, or Go's "2m", "1h30m"), or
    None for what Argo could not parse. A negative one is 0: Argo resumes the node at once."""
    if not isinstance(duration, str) or not duration or len(duration) > _MAX_TEXT:
        return None
    seconds: float
    if _INTEGER.fullmatch(duration):
        seconds = float(int(duration))
    elif _GO_DURATION.fullmatch(duration):
        sign = -1.0 if duration.startswith("-") else 1.0
        total = 0.0
        for number, unit in _GO_PART.findall(duration.lstrip("+-")):
            if number in ("", "."):
                return None  # a unit with no digits, as Go refuses it
            total += float(number) * _GO_UNITS[unit]
        seconds = sign * total
    else:
        return None
    if abs(seconds) > MAX_SECONDS:
        return None
    return max(0.0, seconds)
