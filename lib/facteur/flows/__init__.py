"""Flows: one per function, plus buttons. Each takes ports (flows/ports.py), never Settings.

Rule: a flow imports decisions, errors, logs, telemetry and ports, never an adapter or config,
so that it can be driven by in-memory fakes and so that a function loads only what it wires.
"""
