"""The `facteur` command: check a configuration, register commands, and play Discord and Argo.

Rule: the CLI reads bootstrap's table of functions, so it checks exactly what a function needs.
"""
