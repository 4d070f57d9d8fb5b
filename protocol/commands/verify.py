"""`repo-market verify`: the auditor, as an independent process with public data only.

Reads <data-dir>/market.json, the blob store, the transcripts and the chain's node (never roles/), and
writes nothing into the data directory (it works on a read-only copy): checks the contract's code against
the source, rebuilds every round and every wei from the contract's events (storage must agree), replays
every evaluation from the two dealers' published report blobs (opened as the evaluators open them) and the
circuit artefact and evaluation keys named on chain, recombines every opened output from the key holders'
public shares (every SharePosted event, every share blob; a wrong share is named with its holder), checks every
commitment, reveal, digest, fault, attestation, execution record, signature, binding, and the transcripts'
history anchors. It audits
one block, the chain's head when it starts; rounds a writer is still working on are left out as "in progress"
(never reported as tampering) and named in "cut" and the notices. Prints {"ok", "rounds": [{"round",
"checks"}], "failures": [{"round", "check", "detail"}], "notices", "cut": {"block", "writer", "left_out"}} with
--json; exits 1 on any failure (and when no check ran).
"""
from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from chain import ChainError
from market.limits import MAX_SEED
from protocol.audit import Auditor
from protocol.cli import UsageError, check_option, check_rpc
from protocol.deployment import DeploymentError, open_market

HELP = "replay and check every published digest, signature and commitment of a market"
DESCRIPTION = __doc__


def configure(parser) -> None:
    parser.add_argument("--rpc", metavar="URL", default=None, help="JSON-RPC node instead of the embedded chain")
    parser.add_argument("--round", type=int, action="append", metavar="N", dest="rounds",
                        help="check only round N (repeatable; default: every round)")
    parser.add_argument("--cache-dir", metavar="DIR", default=None,
                        help="optional folder (outside the data directory) for the replay's circuit artefact; "
                             "default: a temporary folder")


def validate(args) -> None:
    for r in args.rounds or []:
        check_option("--round", r, 1, MAX_SEED)
    check_rpc(args.rpc)


def run(args) -> int:
    if args.rpc is not None and not args.rpc.startswith(("http://", "https://")):
        raise UsageError(f"--rpc {args.rpc!r}: must be an http(s) URL")
    for r in args.rounds or []:
        if r < 1:
            raise UsageError(f"--round {r}: rounds are numbered from 1")

    cache = Path(args.cache_dir) if args.cache_dir else None
    if cache is not None and cache.resolve().is_relative_to(Path(args.data_dir).resolve()):
        raise UsageError(f"--cache-dir {args.cache_dir}: must be outside the data directory (verify writes nothing there)")
    try:
        dep = open_market(args.data_dir, args.rpc, read_only=True)
        report = Auditor(dep, cache_dir=cache).run(args.rounds).as_dict()
    except DeploymentError as exc:
        raise UsageError(f"--data-dir {args.data_dir}: {exc}") from None
    except ChainError as exc:
        report = {"ok": False, "rounds": [], "failures": [{"round": 0, "check": "chain", "detail": str(exc)}],
                  "notices": [], "checks": 0}
    if not report["ok"]:  # the failure document's keys, on top of the audit's own
        failures = report.get("failures") or []
        first = failures[0] if failures else {"round": 0, "check": "checks", "detail": "no check ran"}
        report["error"] = "verification failed"
        report["detail"] = (f"{len(failures)} failed check(s); first: round {first['round']} {first['check']}: "
                            f"{' '.join(str(first['detail']).split())}")
    if args.json:
        print(json.dumps(report))
    else:
        console = Console()
        table = Table(title=f"verify {args.data_dir}")
        for col in ("round", "checks", "failed"):
            table.add_column(col)
        for r in report["rounds"]:
            failed = [c["check"] for c in r["checks"] if not c["ok"]]
            table.add_row(str(r["round"]), str(len(r["checks"])), ", ".join(failed) or "—")
        console.print(table)
        for n in report.get("notices", []):
            console.print(f"[yellow]NOTE[/yellow] round {n['round']} {n['check']}: {n['detail']}")
        for f in report["failures"]:
            console.print(f"[red]FAIL[/red] round {f['round']} {f['check']}: {f['detail']}")
        console.print("[green]ok[/green]" if report["ok"] else "[red]verification failed[/red]")
    return 0 if report["ok"] else 1
