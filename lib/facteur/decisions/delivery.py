"""Knative's delivery budget for facteur's internal events: the one place it is set. Pure.

kubernetes/base/triggers.yaml carries the same numbers (tests hold the two together), and what
facteur tells a user while it retries comes from here too.
"""

from __future__ import annotations

# Redeliveries after the first attempt, the first wait, and how the waits grow (Knative's
# DeliverySpec: retry, backoffDelay, backoffPolicy).
RETRIES = 6
BACKOFF_DELAY_SECONDS = 1
BACKOFF_POLICY = "exponential"


def backoff_delay() -> str:
    """The first wait as Knative reads it: an ISO 8601 duration."""
    return f"PT{BACKOFF_DELAY_SECONDS}S"


def waits(first_exponent: int = 0) -> list[int]:
    """Each wait before a redelivery, in seconds: 1, 2, 4, … for exponential. Knative versions
    differ on whether the first wait is the delay or twice it: first_exponent 0 or 1."""
    if BACKOFF_POLICY == "exponential":
        return [BACKOFF_DELAY_SECONDS * 2 ** (n + first_exponent) for n in range(RETRIES)]
    return [BACKOFF_DELAY_SECONDS * (n + 1) for n in range(RETRIES)]


def budget_seconds() -> tuple[int, int]:
    """How long redeliveries go on after a first failed attempt: at the least, at the most."""
    return sum(waits(0)), sum(waits(1))


def budget_text() -> str:
    """The budget as the user reads it: "one to two minutes"."""
    low, high = (max(1, round(seconds / 60)) for seconds in budget_seconds())
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
    low_text, high_text = words.get(low, str(low)), words.get(high, str(high))
    if low == high:
        return f"about {low_text} minute{'s' if low > 1 else ''}"
    return f"{low_text} to {high_text} minutes"
