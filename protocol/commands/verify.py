"""`repo-market verify`: replay and check every published digest, signature and commitment of a market"""
from __future__ import annotations

from protocol.commands._unbuilt import not_built

HELP = "replay and check every published digest, signature and commitment of a market (not built yet)"


def configure(parser) -> None:
    pass


def run(args) -> int:
    return not_built("verify", "issue 6", args.json)
