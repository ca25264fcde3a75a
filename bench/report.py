"""What every benchmark reports besides its own table: the machine, the code, percentiles, and
where results go (bench/results/, which git ignores)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.helpers.support import ROOT

RESULTS = ROOT / "bench" / "results"
# What each family of benchmarks depends on, named in its machine facts.
CHAIN_PACKAGES = ("functions-framework", "gunicorn", "redis", "requests")
VERIFY_PACKAGES = ("functions-framework", "gunicorn", "Flask", "PyNaCl")


def progress(message: str) -> None:
    # stderr, so that stdout stays the Markdown report.
    print(f"# {message}", file=sys.stderr, flush=True)


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def package_versions(*packages: str) -> dict[str, str]:
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def code_state() -> str:
    """The commit measured, and whether lib/ or functions/ differ from it."""
    try:
        head = (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, timeout=10
            )
            .stdout.decode()
            .strip()
        )
        changed = subprocess.run(
            ["git", "status", "--porcelain", "lib", "functions"],
            cwd=ROOT,
            capture_output=True,
            timeout=10,
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" with uncommitted changes in lib/ or functions/" if changed.strip() else "")


def machine_facts(packages: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    """Where a figure was measured: without this a number cannot be compared with another."""
    return {
        "code": code_state(),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": package_versions(*packages),
        **extra,
    }


def machine_line(facts: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in facts["packages"].items())
    return (
        f"machine: nproc {facts['nproc']}, {facts['cpu_model']}, Python {facts['python']}, "
        f"Linux {facts['kernel']}; {packages}\ncode: {facts['code']}"
    )


def percentile(values: list[float], share: float) -> float:
    """The value at index floor(share * n) of the sorted values: the chain benchmarks' figures
    (README quotes them) were computed this way; bench.load.nearest_rank is the other rule."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # default=str: Paths and the like are written as text rather than refused; keys JSON cannot
    # hold (tuples, say) become text too.
    path.write_text(json.dumps(_keyed(payload), indent=1, default=str) + "\n")
    return path


def _keyed(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k if isinstance(k, str | int | float | bool) or k is None else str(k): _keyed(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_keyed(v) for v in value]
    return value


def fresh_log_dir(name: str) -> Path:
    """bench/results/logs/`name` ("" for logs/ itself), emptied of older runs' logs."""
    log_dir = RESULTS / "logs" / name
    log_dir.mkdir(parents=True, exist_ok=True)
    for old_log in log_dir.glob("*.log"):
        old_log.unlink()
    return log_dir


def publish(
    text: str, facts: dict[str, Any], args: Any, started: float, log_dir: Path, **body: Any
) -> None:
    """An entry script's end: its Markdown report and run time to stdout, and to args.output
    the JSON of the machine, the settings, its own results (`body`), when and how long."""
    elapsed = time.monotonic() - started
    print(text)
    print(f"\n(total run time {elapsed:.0f} s; server logs in {log_dir.relative_to(ROOT)})")
    payload = {
        "machine": facts,
        "settings": vars(args),
        **body,
        "elapsed_s": elapsed,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_json(args.output, payload)
