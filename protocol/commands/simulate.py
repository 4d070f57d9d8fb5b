"""`repo-market simulate`: simulate many rounds with theta shocks; contract vs no-contract welfare"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "simulate many rounds with theta shocks; contract vs no-contract welfare (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("simulate", "issue 3", args.json)
