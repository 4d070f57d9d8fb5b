"""`repo-market chain`: manage a local anvil node: up, down, status"""
from __future__ import annotations

import json

from rich.console import Console

from chain.node import node_status, start_anvil, stop_anvil
from protocol.cli import UsageError

HELP = "manage a local anvil node for the data directory: up, down, status"
DESCRIPTION = """\
Run anvil (from the project-local npm install, or $REPO_MARKET_ANVIL) on 127.0.0.1 and a free port,
with --state in <data-dir>/chain/anvil/ so the chain survives restarts.

  repo-market chain up [--json]      start (or find) the node; prints its URL once it answers
  repo-market chain down [--json]    stop it (its state is dumped on exit)
  repo-market chain status [--json]  running or not, URL, pid, block number

Pass the URL to other commands to use the node instead of the embedded chain.
"""
ACTIONS = ("up", "down", "status")


def configure(parser) -> None:
    parser.add_argument("action", help="up | down | status")


def validate(args) -> None:
    if args.action not in ACTIONS:
        raise UsageError(f"action must be one of up, down, status; got {args.action!r}")


def run(args) -> int:
    if args.action == "up":
        info = start_anvil(args.data_dir)  # a NodeError is reported by the dispatcher like every failure
        doc = {"url": info.url, "pid": info.pid}
        human = f"anvil running at {info.url} (pid {info.pid}, state {info.state_path})"
    elif args.action == "down":
        info = stop_anvil(args.data_dir)
        doc = {"stopped": info is not None, "pid": info.pid if info else None}
        human = f"stopped anvil (pid {info.pid})" if info else "no anvil running for this data directory"
    else:
        doc = node_status(args.data_dir)
        human = (f"anvil running at {doc['url']} (pid {doc['pid']}, block {doc['block_number']})"
                 if doc["running"] else "no anvil running for this data directory")
    if args.json:
        print(json.dumps(doc))
    else:
        Console(stderr=True).print(human)
        if args.action == "up":
            print(doc["url"])  # the one thing a script needs, on stdout
    return 0

