"""`repo-market allocate`: clear one allocation problem (Cha et al.): KKT equilibrium, price adjustment or on chain"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "clear one allocation problem (Cha et al.): KKT equilibrium, price adjustment or on chain (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("allocate", "issue 7", args.json)
