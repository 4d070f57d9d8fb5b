"""`repo-market experiment`: run an allocation experiment (fee sweep, shocks, frontier, ...) writing JSON and PNG"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "run an allocation experiment (fee sweep, shocks, frontier, ...) writing JSON and PNG (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("experiment", "issue 7", args.json)
