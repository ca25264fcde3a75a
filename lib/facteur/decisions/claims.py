"""Claims as leases: how facteur makes an effect happen once across redeliveries and crashes.

A hop takes a claim "in progress" for a short lease before its effect (a hand-off, a reply, a
post), and marks it "done" once the effect happened. A redelivery that finds a live lease is
answered 5xx, to come back later; one that finds the lease expired, because the holder crashed,
takes over. So a crash at any point loses nothing, and a done claim doubles nothing. Pure.
"""

from __future__ import annotations

from enum import Enum


class Claim(Enum):
    # This caller holds the lease now: do the effect, then finish or release the claim.
    TAKEN = "taken"
    # Another delivery holds a live lease: answer 5xx so that Knative comes back later.
    BUSY = "busy"
    # The effect already happened: a duplicate.
    DONE = "done"


# The claims' kinds: command_route's on an interaction, workflow_submit's on its reply.
SEEN = "seen"
REPLIED = "replied"
# Set once a user was told that facteur keeps trying; a marker, not a lease.
RETRYING = "retrying"
# command_route's on a click (one answer per delivery of it), and on what a click does to a run
# (one per attempt of the run, or per approval gate, whoever clicks).
CLICKED = "clicked"
ACTED = "acted"

# Longer than any one hop takes to do its effect, shorter than the delivery budget
# (decisions/delivery.py), so a crashed holder's lease ends while redeliveries remain.
LEASE_SECONDS = 30.0
