"""Decisions: pure rules and texts, with no I/O.

Rule: a module here imports only other decisions, `facteur.errors`, the standard library and
pydantic. Never an adapter, a flow, config or a third-party client. Tests drive them with tables.
"""
