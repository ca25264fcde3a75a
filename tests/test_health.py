"""Readiness answers from a cache, with one probe in flight per dependency."""

from __future__ import annotations

import json
import threading
import time

from facteur import bootstrap
from facteur.config import load_settings
from facteur.health import Readiness


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_dependency_is_checked_at_most_once_per_second() -> None:
    calls: list[str] = []
    clock = Clock()
    ready = Readiness({"redis": lambda: calls.append("redis") or True}, clock=clock)
    assert ready() == (200, {"ready": True, "checks": {"redis": True}})
    clock.now += 0.5
    assert ready()[0] == 200
    assert calls == ["redis"]
    clock.now += 0.6
    ready()
    assert calls == ["redis", "redis"]


def test_a_failed_dependency_makes_it_unready_and_is_asked_again() -> None:
    answers = iter([False, True])
    clock = Clock()
    ready = Readiness({"sink": lambda: next(answers), "argo": lambda: True}, clock=clock)
    assert ready() == (503, {"ready": False, "checks": {"sink": False, "argo": True}})
    clock.now += 1.0
    assert ready() == (200, {"ready": True, "checks": {"sink": True, "argo": True}})


def test_a_hanging_dependency_is_probed_once_however_many_callers() -> None:
    release = threading.Event()
    calls: list[int] = []

    def hangs() -> bool:
        calls.append(1)
        release.wait(5)
        return True

    clock = Clock()
    ready = Readiness({"redis": hangs}, clock=clock)
    first = threading.Thread(target=ready)
    first.start()
    while not calls:
        time.sleep(0.01)
    # The answer is stale now; 64 callers arrive while the one probe still hangs.
    clock.now += 5
    answers: list[tuple[int, dict[str, object]]] = []
    waiting = [threading.Thread(target=lambda: answers.append(ready())) for _ in range(64)]
    for thread in waiting:
        thread.start()
    release.set()
    for thread in [first, *waiting]:
        thread.join(5)
    assert len(calls) <= 2  # the first probe, and at most one refresh after it
    assert len(answers) == 64


def test_callers_do_not_queue_behind_a_probe_once_an_answer_is_known() -> None:
    release = threading.Event()
    answers = iter([True])
    clock = Clock()

    def check() -> bool:
        value = next(answers, None)
        if value is None:  # the refresh hangs
            release.wait(5)
            return False
        return value

    ready = Readiness({"redis": check}, clock=clock)
    assert ready()[0] == 200
    clock.now += 2
    prober = threading.Thread(target=ready)
    prober.start()
    time.sleep(0.05)
    started = time.monotonic()
    assert ready()[0] == 200  # the last known answer, at once
    assert time.monotonic() - started < 0.5
    release.set()
    prober.join(5)


def test_readiness_names_no_url_and_no_password() -> None:
    password = "s3cretpassword"
    settings = load_settings(
        environ={
            "FACTEUR_REDIS_URL": f"redis://:{password}@127.0.0.1:9/0",
            "FACTEUR_ARGO_SERVER_URL": f"http://argo:{password}@127.0.0.1:9",
            "FACTEUR_DISCORD_API_BASE_URL": f"http://bot:{password}@127.0.0.1:9/api",
            "FACTEUR_DISCORD_BOT_TOKEN": "bot-token-0123456789",
            "K_SINK": f"http://sink:{password}@127.0.0.1:9/",
        }
    )
    checks = bootstrap.checks(
        settings, redis=bootstrap.store(settings), sink=True, argo=True, discord=True
    )
    status, body = Readiness(checks)()
    assert (status, body) == (
        503,
        {"ready": False, "checks": dict.fromkeys(["redis", "sink", "argo", "discord"], False)},
    )
    assert password not in json.dumps(body)
