"""`repo-market equilibria`: enumerate all pure equilibria of the dealer game and the contract's selection"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "enumerate all pure equilibria of the dealer game and the contract's selection (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("equilibria", "issue 3", args.json)
