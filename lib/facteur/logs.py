"""Structured logs and the audit trail: one JSON object per line on stdout.

Every line carries the function, and whatever the current request has bound: the correlation
and interaction IDs, the command, the user, the workflow once known. Audit events (`audit: true`)
record each decision that matters, saying who did what. Secrets never reach a line: values
facteur knows to be secret are replaced before anything is written.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from facteur import telemetry

log = logging.getLogger("facteur.audit")

# Audit events that also count as metrics: event -> (counter, result; None: the check).
_AUDIT_METRICS: dict[str, tuple[str, str | None]] = {
    "command.refused": ("facteur_commands_total", None),
    "workflow.requested": ("facteur_commands_total", "accepted"),
    "command.limited": ("facteur_commands_total", "limited"),
    "workflow.submitted": ("facteur_workflows_submitted_total", None),
    "workflow.submit_failed": ("facteur_workflow_submits_failed_total", None),
    "callback.ignored": ("facteur_callbacks_ignored_total", None),
    "workflow.reported": ("facteur_outcomes_reported_total", None),
    "approval.granted": ("facteur_approvals_total", "granted"),
    "approval.rejected": ("facteur_approvals_total", "rejected"),
    "approval.denied": ("facteur_approvals_total", "denied"),
}

# Fields of the command in flight, for every line logged while handling it.
# Never mutated in place: each bind makes a new mapping, so requests cannot leak into others.
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "facteur_log_context", default=MappingProxyType({})
)
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Attach fields to every line logged inside the block (per request, thread-safe)."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current request's context, e.g. the workflow once it is known."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def _extra(fields: dict[str, Any]) -> dict[str, Any]:
    # LogRecord refuses extras that shadow its own attributes (created, name, message…).
    return {(f"{key}_" if key in _STANDARD else key): value for key, value in fields.items()}


def finished(outcome: str, started: float, **fields: Any) -> None:
    """The request's last line: how it ended and how long it took."""
    took = round((time.perf_counter() - started) * 1000, 2)
    logging.getLogger("facteur").info(
        "handled", extra=_extra({"outcome": outcome, "duration_ms": took, **fields})
    )
    telemetry.count("facteur_command_events_processed_total", outcome=outcome)
    if outcome == "failed" or int(fields.get("status") or 0) >= 500:
        telemetry.count("facteur_command_events_failed_total", outcome=outcome)
    telemetry.record("facteur_hop_duration_ms", took, outcome=outcome)


def audit(event: str, **fields: Any) -> None:
    """One line per decision that matters: denied, submitted, cancelled…"""
    log.info(event, extra=_extra({"audit": True, "event": event, **fields}))
    metric = _AUDIT_METRICS.get(event)
    if metric:
        name, result = metric
        detail = fields.get("check") if result is None else result
        labels: dict[str, str] = {"result": str(detail)} if detail else {}
        telemetry.count(name, **labels)


class Scrubber:
    """Replaces facteur's secrets in text: in its own logs, and in a step's logs it shows."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Short values would redact innocent text; facteur's secrets are long.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


class _Redactor(Scrubber, logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        Scrubber.__init__(self, secrets)
        logging.Filter.__init__(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            record.msg, record.args = self.scrub(record.getMessage()), ()
            for key, value in list(record.__dict__.items()):
                if key not in _STANDARD and isinstance(value, str):
                    record.__dict__[key] = self.scrub(value)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, function: str) -> None:
        super().__init__()
        self._function = function

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "function": self._function,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context.get())
        line.update(
            {k: v for k, v in record.__dict__.items() if k not in _STANDARD and k != "function"}
        )
        # Every line names its event: an audit event's name, else what was logged.
        line.setdefault("event", line["message"])
        return json.dumps(line, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """For the local loop: readable, still with the request's fields."""

    def __init__(self, function: str) -> None:
        super().__init__()
        self._function = function

    def format(self, record: logging.LogRecord) -> str:
        fields = {**_context.get()}
        fields.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if k not in ("audit", "event"))
        tag = "AUDIT " if fields.get("audit") else ""
        return f"[{self._function}] {record.levelname.lower()} {tag}{record.getMessage()} {extra}"


class _Stdout(logging.StreamHandler[Any]):
    """Writes to whatever sys.stdout is at the time, as a server's redirections expect."""

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(
    function: str, *, level: str = "INFO", fmt: str = "json", secrets: Iterable[str] = ()
) -> None:
    """Send facteur's logs, and the libraries' warnings, to stdout in the chosen format."""
    handler = _Stdout()
    handler.setFormatter(JsonFormatter(function) if fmt == "json" else ConsoleFormatter(function))
    handler.addFilter(_Redactor(secrets))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "facteur", False)]:
        root.removeHandler(old)
    handler.facteur = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("facteur").setLevel(level.upper())
