"""`facteur check-deploy`: what `kubectl kustomize` renders for a deployment, checked for what
would keep it from working, one line a problem."""

from __future__ import annotations

import argparse


def check_deploy(args: argparse.Namespace) -> int:
    raise NotImplementedError("check-deploy is being written")
