"""`repo-market chain`: manage a local anvil node: up, down, status"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "manage a local anvil node: up, down, status (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("chain", "issue 5", args.json)
