"""Adapters: one client per kind of I/O (Discord, Argo, Redis, the sink, signatures, events).

Rule: an adapter makes no decisions and never reads Settings; bootstrap hands it what it needs.
It may import decisions (for the records it returns), errors, logs and telemetry, never a flow.
"""
