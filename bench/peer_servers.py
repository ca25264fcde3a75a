"""bench_peers' peers: other Discord interactions endpoints to hold facteur against, each
installed on first use into bench/.peers/ (git ignores it) and described as a `Target`.

- the Python peer: PyPI's discord-interactions behind functions-framework, with the framework's
  default gunicorn settings (bench/peers/python/main.py, bench/peers/requirements.txt), in a
  virtualenv of its own so that nothing reaches facteur's;
- the Node peer: npm's discord-interactions and express, shaped like Discord's example app
  (bench/peers/node/), when node and npm are on PATH.

Each install is redone when its requirements or lock file change, and only then.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from bench.processes import HOST, PORT, Target, framework_target
from bench.report import progress
from tests.helpers.support import ROOT

PEERS = ROOT / "bench" / "peers"
CACHE = ROOT / "bench" / ".peers"
INSTALL_TIMEOUT_S = 600.0
STAMP = ".bench-installed"  # what an install was made from, to know when to redo it


class PeerUnavailable(Exception):
    """A peer that cannot be installed here; the message says why."""


def _install(command: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise PeerUnavailable(f"{what}: {err}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-5:])
        raise PeerUnavailable(f"{what} failed ({done.returncode}): {tail}")


def _installed(stamp: Path, source: str, install: list[tuple[list[str], Path, str]]) -> None:
    """Run the `install` steps unless `stamp` says they were made from `source` already."""
    if stamp.exists() and stamp.read_text() == source:
        return
    for command, cwd, what in install:
        progress(f"installing: {what}")
        _install(command, cwd, what)
    stamp.write_text(source)


def python_peer() -> Target:
    venv = CACHE / "venv"
    requirements = PEERS / "requirements.txt"
    python = venv / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    _installed(
        venv / STAMP,
        requirements.read_text(),
        [
            ([sys.executable, "-m", "venv", "--clear", str(venv)], CACHE, "python -m venv"),
            (
                [str(python), "-m", "pip", "install", "--quiet", "-r", str(requirements)],
                CACHE,
                f"pip install -r {requirements.relative_to(ROOT)}",
            ),
        ],
    )
    return framework_target(
        "python-peer",
        "python_peer",
        PEERS / "python" / "main.py",
        binary=venv / "bin" / "functions-framework",
        serving=(),  # the framework's defaults, whatever facteur's serving becomes
        env=(("THREADS", None), ("WORKERS", None)),  # 1 worker, 4 threads per CPU
    )


def node_peer() -> Target:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PeerUnavailable("node or npm is not on PATH")
    source, work = PEERS / "node", CACHE / "node"
    work.mkdir(parents=True, exist_ok=True)
    # Copied beside its node_modules: the ES module imports resolve from the script's folder.
    for name in ("package.json", "package-lock.json", "server.js"):
        if (source / name).exists():
            shutil.copyfile(source / name, work / name)
    lock = source / "package-lock.json"
    manifest = lock if lock.exists() else source / "package.json"
    command = [npm, "ci" if lock.exists() else "install", "--omit=dev", "--no-audit", "--no-fund"]
    _installed(work / STAMP, manifest.read_text(), [(command, work, " ".join(command[1:]))])
    return Target("node-peer", "node_peer", (node, str(work / "server.js"), HOST, PORT))
