"""`repo-market demo`: run the main job: a market with several rounds on the embedded chain with real FHE, then the auditor"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "run the main job: a market with several rounds on the embedded chain with real FHE, then the auditor (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("demo", "issue 6", args.json)
