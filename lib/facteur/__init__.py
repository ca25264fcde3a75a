"""facteur: Discord slash commands in, Argo Workflows runs out, one live message per run.

The rooms: `decisions/` (pure), `adapters/` (one client each), `flows/` (one per function),
`bootstrap` (the one place that wires them), `cli/`. Subpackage `__init__` files stay free of
imports on purpose: each function loads only what its own path needs.
"""
