"""Benchmark: what the third-party audit costs -- the event/balance/history checks and the whole verify.

Builds a market of ``--rounds`` demo rounds (default 4) on the embedded chain and, if the anvil binary is
installed, on anvil; writes its transcripts; then runs the auditor read-only, as ``repo-market verify`` does,
and reports: the history checks (every event read from the node, the sender of every transaction, the
phase machine, the deadlines, the money, the balance at every block with an event, storage against the
events), the whole audit, the replays, the number of checks, and -- with ``--backend fhe`` -- the audit
time against the evaluation time it replays (one evaluation per round). Targets: history
checks <= 2 s for a 4-round market; verify <= 1.1 x the FHE evaluation it replays.

Usage: .venv/bin/python benchmarks/bench_audit.py [--backend simulate|fhe] [--grid 6] [--rounds 4] [--out FILE]
Writes JSON (default bench-results/bench_audit.json, or bench_audit_fhe.json with --backend fhe) and prints
a table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import machine  # noqa: E402  (benchmarks/machine.py)

from chain.node import anvil_binary, start_anvil, stop_anvil  # noqa: E402
from crypto.fhe_runtime import reexec_with_fixed_plan  # noqa: E402
from market.terms import MarketTerms  # noqa: E402
from protocol.audit import Auditor  # noqa: E402
from protocol.deployment import create_market, open_market  # noqa: E402
from protocol.report import write_transcript  # noqa: E402
from protocol.rounds import RoundDriver, next_round_id  # noqa: E402
from protocol.scenario import DEFAULT_BASE_RATE, deal_inputs, demo_plans  # noqa: E402


def build_market(path: Path, *, backend: str, grid: int, rounds: int, rpc_url: str | None) -> dict:
    dep = create_market(path, MarketTerms(grid=grid, base_rate=DEFAULT_BASE_RATE), backend=backend,
                        evaluators=2, threshold=2, rpc_url=rpc_url)
    driver = RoundDriver(dep, dep.circuit())
    evaluation = 0.0
    for plan in demo_plans(grid, rounds, seed=0):
        rid = next_round_id(dep)
        deal_inputs(dep, rid, plan)
        run = driver.run_round(rid)
        write_transcript(dep, rid, run)
        evaluation += run["timings"].get("evaluate", 0.0) / 2  # one evaluation per round (2 evaluators)
    return {"evaluation_replayed": round(evaluation, 4)}


def audit(path: Path) -> dict:
    start = time.perf_counter()
    report = Auditor(open_market(path, read_only=True)).run().as_dict()
    seconds = time.perf_counter() - start
    t = report["timings"]
    return {"ok": report["ok"], "failures": report["failures"], "checks": report["checks"],
            "seconds": round(seconds, 4), "history_seconds": t.get("history"), "events": t.get("history_events"),
            "replays": {k: v for k, v in t.items() if k.startswith("replay_round_")}}


def main(argv: list[str] | None = None) -> int:
    reexec_with_fixed_plan()  # evaluations and replays under the fixed FFT plan

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("simulate", "fhe"), default="simulate")
    parser.add_argument("--grid", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or ROOT / "bench-results" / ("bench_audit.json" if args.backend == "simulate"
                                                 else f"bench_audit_{args.backend}.json")
    load_before = os.getloadavg()[0]
    workdir = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    results = {}
    try:
        chains = ["embedded"] + (["anvil"] if anvil_binary().is_file() else [])
        for name in chains:
            url = start_anvil(workdir / "anvil").url if name == "anvil" else None
            try:
                path = workdir / name / "market"
                built = build_market(path, backend=args.backend, grid=args.grid, rounds=args.rounds, rpc_url=url)
                result = {**built, **audit(path)}
                if args.backend == "fhe" and built["evaluation_replayed"]:
                    result["ratio"] = round(result["seconds"] / built["evaluation_replayed"], 3)
                results[name] = result
            finally:
                if url is not None:
                    stop_anvil(workdir / "anvil")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    doc = {"benchmark": "audit",
           "config": {"backend": args.backend, "grid": args.grid, "rounds": args.rounds, "evaluators": 2,
                      "threshold": 2},
           "machine": machine(load_average_1m_before=load_before, load_average_1m_after=os.getloadavg()[0]),
           "targets": {"history_seconds": 2.0, "ratio_to_evaluation": 1.1},
           "chains": results}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")

    table = Table(title=f"audit of a {args.rounds}-round market ({args.backend}, grid {args.grid}), seconds")
    for col in ("chain", "ok", "checks", "events", "history", "verify", "evaluation replayed", "ratio"):
        table.add_column(col, justify="right")
    for name, r in results.items():
        table.add_row(name, str(r["ok"]), str(r["checks"]), str(r["events"]), f"{r['history_seconds']:.3f}",
                      f"{r['seconds']:.3f}", f"{r['evaluation_replayed']:.3f}", str(r.get("ratio", "—")))
    Console().print(table)
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
