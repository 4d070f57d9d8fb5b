"""`repo-market bench`: run a benchmark script and write its JSON"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "run a benchmark script and write its JSON (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("bench", "issues 3-7", args.json)
