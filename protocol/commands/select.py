"""`repo-market select`: run the contract's selection rule on one pair of reports (plain, simulated or real FHE)"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "run the contract's selection rule on one pair of reports (plain, simulated or real FHE) (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("select", "issue 4", args.json)
