"""The main job: a market with several rounds (real FHE by default), a report, plots, then the auditor.

Re-running on an existing data directory [decided]: the market is **reused** -- same keys, contract and
FHE keys -- and the new rounds are appended after the existing ones (round ids continue on chain); a round
left open by a killed run is resumed first, with the inputs it was dealt.  The requested ``--grid`` and
``--backend`` must match the existing market's (they fix the circuit and the keys); otherwise the
command refuses and names the option, the value asked and the value in the data directory.
``report.json`` describes the rounds of this run; ``verify`` checks every round of the market.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from protocol.deployment import create_market, missing_signers, open_market
from protocol.layout import DataDir, read_json, write_json
from protocol.report import round_summary, write_plots
from protocol.rounds import RoundDriver, next_round_id, rebuild_ledger
from protocol.scenario import DEFAULT_BASE_RATE, RoundPlan, deal_inputs, demo_plans

__all__ = ["run_demo", "DemoConflict", "DEFAULT_GRID", "run_verify_process"]

# [decided] 17 volume points; with the radix circuit the demo incl. compile, keys and verify takes ~110 s on
# 2 cores (target 180 s; README, bench_protocol.json)
DEFAULT_GRID = 16


class DemoConflict(Exception):
    """The data directory holds a market incompatible with the request: (option, requested, existing)."""

    def __init__(self, option: str, requested, existing):
        super().__init__(f"{option} {requested}: the market in this data directory has {existing}; "
                         f"use another --data-dir for a new market")
        self.option, self.requested, self.existing = option, requested, existing


def _plan_file(layout: DataDir, round_id: int) -> Path:
    # narrator's knowledge (true schedules): outside roles/ and never read by the auditor
    return layout.root / "demo" / f"round-{round_id}.plan.json"


def run_verify_process(data_dir: Path, rpc_url: str | None, rounds: list[int] | None = None) -> dict:
    """Run ``repo-market verify --json`` as an independent process; returns its JSON and exit status."""
    cmd = [sys.executable, "-m", "protocol.cli", "verify", "--data-dir", str(data_dir), "--json"]
    if rpc_url:
        cmd += ["--rpc", rpc_url]
    for r in rounds or []:
        cmd += ["--round", str(r)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    try:
        result = json.loads(out.stdout)
    except json.JSONDecodeError:
        result = {"ok": False, "failures": [{"round": 0, "check": "verify.process",
                                              "detail": (out.stderr or out.stdout)[-2000:]}]}
    result["exit_status"] = out.returncode
    result["seconds"] = round(elapsed, 3)
    return result


def run_demo(data_dir: Path, *, rounds: int = 4, grid: int = DEFAULT_GRID, backend: str = "fhe", seed: int = 0,
             rpc_url: str | None = None, evaluators: int = 2, threshold: int = 2, verify: bool = True,
             ui=None, signers: dict | None = None) -> dict:
    """Create or reuse the market, run the rounds, write report.json and plots, run the auditor."""
    from market.selection import HurdleMode
    from market.terms import MarketTerms

    ui = ui or _SilentUI()
    start = time.perf_counter()
    layout = DataDir(Path(data_dir))
    setup: dict = {}
    if layout.exists():
        dep = open_market(layout.root, rpc_url, signers=signers)
        missing = missing_signers(dep)
        if missing:
            raise DemoConflict(f"--key-file/--keystore {missing[0]}", "missing",
                               f"{', '.join(missing)} signing with their own keys (market.json accounts)")
        if dep.terms.grid != grid:
            raise DemoConflict("--grid", grid, f"grid {dep.terms.grid}")
        if dep.backend != backend:
            raise DemoConflict("--backend", backend, f"backend {dep.backend}")
        setup["reused"] = True
    else:
        terms = MarketTerms(grid=grid, base_rate=DEFAULT_BASE_RATE, hurdle_mode=HurdleMode.MARGIN)
        t = time.perf_counter()
        dep = create_market(layout.root, terms, backend=backend, evaluators=evaluators, threshold=threshold,
                            rpc_url=rpc_url, seed=seed, progress=lambda stage: ui.stage(stage), signers=signers)
        setup = {"reused": False, "seconds": round(time.perf_counter() - t, 3), **dep.descriptor["timings"]}
    ui.stage("load circuit")
    circuit = dep.circuit()
    driver = RoundDriver(dep, circuit, progress=ui.event)

    # a round left open by a killed run: resume it with the inputs it was dealt
    todo: list[tuple[int, RoundPlan]] = []
    open_id = next_round_id(dep)
    if _plan_file(layout, open_id).exists() and dep.coordinator.current_round() == open_id:
        todo.append((open_id, RoundPlan.from_dict(read_json(_plan_file(layout, open_id)))))
    plans = demo_plans(grid, rounds, seed)
    results = []
    run_ids = []
    for plan in [p for _, p in todo] + plans:
        if todo and plan is todo[0][1]:
            rid = todo.pop(0)[0]
        else:
            rid = next_round_id(dep)
            write_json(_plan_file(layout, rid), plan.as_dict(), mode=0o600)
            deal_inputs(dep, rid, plan)
        ui.round_start(rid, plan.label)
        run = driver.run_round(rid)
        run_ids.append((rid, plan, run))
        ui.round_done(rid, run["phase"])

    dealer_mm = driver.agent("dealer_mm")
    instructions = {rid: dealer_mm.instruction(rid) for rid, _, _ in run_ids}
    r_bd_of = {rid: ins["r_bd_x2"] for rid, ins in instructions.items() if ins["trade"]}
    ledger, per_round = rebuild_ledger(dep, r_bd_of)
    for rid, plan, run in run_ids:
        summary = round_summary(dep, rid, plan, run, per_round.get(rid), instructions[rid])
        results.append(summary)
        ui.round_table(summary)

    plots = write_plots(results, [p for _, p, _ in run_ids], layout.plots) if results else []
    report = {
        "contract": dep.contract_address,
        "chain": {"backend": dep.chain.backend, "chain_id": dep.chain_id, "rpc_url": rpc_url},
        "backend": dep.backend,
        "terms": dep.terms.as_dict(),
        "evaluators": {"n": len(dep.evaluators), "threshold": dep.threshold},
        "setup": setup,
        "rounds": results,
        "ledger": {"balances": ledger.snapshot(), "conserved": ledger.totals() == ledger.initial_totals,
                   "units": "cash in half-bp units (20000 per volume unit); collateral in volume units"},
        "plots": plots,
    }
    if verify:
        ui.stage("auditor: repo-market verify (independent process)")
        report["verify"] = run_verify_process(layout.root, rpc_url)
        ui.verify_done(report["verify"])
    report["total_seconds"] = round(time.perf_counter() - start, 3)
    write_json(layout.report_file, report)
    return report


class _SilentUI:
    def stage(self, name):
        pass

    def event(self, name, **info):
        pass

    def round_start(self, rid, label):
        pass

    def round_done(self, rid, phase):
        pass

    def round_table(self, summary):
        pass

    def verify_done(self, result):
        pass
