"""The chain under test: interaction_verify -> command_route -> workflow_submit as real
functions-framework processes, chained by K_SINK directly or through two Brokers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.broker import Broker
from bench.processes import stop_all
from facteur.web import DEAD_LETTER_PATH
from tests.helpers.servers import FunctionProcess
from tests.helpers.support import base_env

# Not a real token: the bot token only lets facteur post in the channel, which the fake records.
BOT_TOKEN = "bench-bot-token"  # noqa: S105


@dataclass
class Chain:
    verify_url: str
    processes: list[FunctionProcess]
    brokers: list[Broker]

    def idle(self) -> bool:
        return all(broker.idle() for broker in self.brokers)


@contextmanager
def chain(
    env: dict[str, str],
    workdir: Path,
    brokers: tuple[Broker, Broker] | None = None,
) -> Iterator[Chain]:
    """verify -> route -> submit as real processes, chained by K_SINK directly or through two
    brokers; every process is stopped on the way out, whatever happened."""
    processes: list[FunctionProcess] = []
    with contextlib.ExitStack() as stack:
        try:
            submit = FunctionProcess("workflow_submit", env, workdir / "submit.log")
            processes.append(submit)
            route_sink = _sink_before(submit.url, brokers[1] if brokers else None, stack)
            route = FunctionProcess("command_route", env | {"K_SINK": route_sink}, workdir / "r")
            processes.append(route)
            # What the brokers give up on goes to command_route's dead-letter path.
            for broker in brokers or ():
                broker.dead_letter = route.url.rstrip("/") + DEAD_LETTER_PATH
            verify_sink = _sink_before(route.url, brokers[0] if brokers else None, stack)
            verify = FunctionProcess(
                "interaction_verify", env | {"K_SINK": verify_sink}, workdir / "v"
            )
            processes.append(verify)
            for proc in processes:
                proc.wait_ready()
            yield Chain(verify.url, processes, list(brokers or ()))
        finally:
            stop_all(processes)


def _sink_before(target: str, broker: Broker | None, stack: contextlib.ExitStack) -> str:
    """K_SINK for the function in front of `target`: `target` itself, or a broker serving it
    (stopped with `stack`)."""
    if broker is None:
        return target
    broker.target = target
    return stack.enter_context(broker.serve()) + "/"


def chain_env(redis_url: str, fake_url: str, threads: int, **extra: str) -> dict[str, str]:
    """The functions' settings: Redis, and Argo and Discord at the Recorder's URL."""
    return base_env(
        FACTEUR_REDIS_URL=redis_url,
        FACTEUR_ARGO_SERVER_URL=fake_url,
        FACTEUR_DISCORD_API_BASE_URL=f"{fake_url}/api/v10",
        FACTEUR_DISCORD_BOT_TOKEN=BOT_TOKEN,
        THREADS=str(threads),
        **extra,
    )


def wait_until(done: Callable[[], bool], timeout: float, poll: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(poll)
    return bool(done())
