"""facteur's shared library: decisions (pure) and adapters (one client each).

Modules stay import-light on purpose: each function imports only what its own path needs.
"""
