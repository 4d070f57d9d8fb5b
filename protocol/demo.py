"""The main job: a market with several rounds (real FHE by default), a report, plots, then the auditor.

Re-running on an existing data directory [decided]: the market is **reused** -- same keys, contract and
FHE keys -- and the new rounds are appended after the existing ones (round ids continue on chain); a round
left open by a killed run is resumed first, with the inputs it was dealt.  The requested ``--grid`` and
``--backend`` must match the existing market's (they fix the circuit and the keys); otherwise the
command refuses and names the option, the value asked and the value in the data directory.
``report.json`` describes the rounds of this run and is rewritten as each round closes (with the round's
public transcript, so a killed run loses nothing already closed); it holds public data only, at 0644.
The narrator's view -- true schedules' equilibrium sets, hurdles, theta, behaviours, the opened
instruction -- goes to ``private/report.json`` (0600, folder 0700) [decided]. ``verify`` checks every
round of the market; it runs isolated (``python -I`` and the absolute path of this checkout), so nothing
in the working directory can stand in for the auditor, and a verify with no checks is a failure.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from common import strict_json
from common.vocabulary import DEALER_MM
from market.selection import HurdleMode
from market.terms import MarketTerms
from protocol.deployment import DEFAULT_SLOTS, create_market, missing_signers, open_market
from protocol.errors import ProtocolPackageError
from protocol.layout import PRIVATE_REPORT, DataDir, read_json, write_json
from protocol.report import round_summary, write_plots
from protocol.roles import ProtocolError
from protocol.rounds import RoundDriver, next_round_id, rebuild_ledger
from protocol.scenario import DEFAULT_BASE_RATE, RoundPlan, deal_inputs, demo_plans

__all__ = ["run_demo", "DemoConflict", "DEFAULT_GRID", "run_verify_process"]

# [decided] 17 volume points: the demo incl. compile, keys and verify stays within its target on 2 cores
# (bench-results/bench_protocol.json: demo_seconds, demo_target_seconds)
DEFAULT_GRID = 8  # the owner-encrypted circuit is quadratic in N (README, known limitations)


class DemoConflict(ProtocolPackageError):
    """The data directory holds a market incompatible with the request: (option, requested, existing)."""

    def __init__(self, option: str, requested, existing):
        super().__init__(f"{option} {requested}: the market in this data directory has {existing}; "
                         f"use another --data-dir for a new market")
        self.option, self.requested, self.existing = option, requested, existing


# keys of a round summary that only the narrator knows (true schedules, private inputs, the opened instruction)
PRIVATE_ROUND_KEYS = ("inputs", "equilibria", "selected", "reference", "matches_reference", "payoffs")
# The auditor's entry point: this checkout's package root, absolute, in an isolated interpreter (-I: no
# PYTHON* variables, no user site, no working directory or script folder on sys.path).
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
_ISOLATED_ENTRY = ("import sys; sys.path.insert(0, {root!r}); from protocol.entry import main; "
                   "raise SystemExit(main())")


def auditor_command(data_dir: Path) -> list[str]:
    """The isolated ``repo-market verify --json`` command line (absolute data directory)."""
    return [sys.executable, "-I", "-c", _ISOLATED_ENTRY.format(root=str(PACKAGE_ROOT)), "verify",
            "--data-dir", str(Path(data_dir).resolve()), "--json"]


def run_verify_process(data_dir: Path, rpc_url: str | None, rounds: list[int] | None = None) -> dict:
    """Run ``repo-market verify --json`` as an independent, isolated process; returns its JSON and exit status.

    A result without a single check is a failure whatever it says (a stand-in cannot pass as the auditor)."""
    cmd = auditor_command(data_dir)
    if rpc_url:
        cmd += ["--rpc", rpc_url]
    for r in rounds or []:
        cmd += ["--round", str(r)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    try:
        result = strict_json.loads(out.stdout)
    except ValueError:  # not JSON, or ambiguous JSON (strict_json.JsonInputError)
        result = {"ok": False, "failures": [{"round": 0, "check": "verify.process",
                                              "detail": (out.stderr or out.stdout)[-2000:]}]}
    result["exit_status"] = out.returncode
    result["seconds"] = round(elapsed, 3)
    checks = sum(len(r.get("checks", [])) for r in result.get("rounds", []) if isinstance(r, dict))
    if result.get("ok") and (checks == 0 or out.returncode != 0):
        result["ok"] = False
        result.setdefault("failures", []).append(
            {"round": 0, "check": "verify.process",
             "detail": f"verify reported ok with {checks} checks and exit status {out.returncode}"})
    return result


def run_demo(data_dir: Path, *, rounds: int = 4, grid: int = DEFAULT_GRID, backend: str = "fhe", seed: int = 0,
             rpc_url: str | None = None, evaluators: int = 2, threshold: int = 2, verify: bool = True,
             ui=None, signers: dict | None = None, input_proofs: bool = False, holders: int = 3,
             holder_threshold: int = 2, slots: int = DEFAULT_SLOTS) -> dict:
    """Create or reuse the market, run the rounds, write report.json and plots, run the auditor.
    ``holders``/``holder_threshold``/``slots``: the key holders of a new ``fhe`` market (2-of-3 by default)."""
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
        if input_proofs and not dep.input_proofs:
            raise DemoConflict("--input-proofs", "on", "a market created without input proofs")
        setup["reused"] = True
    else:
        terms = MarketTerms(grid=grid, base_rate=DEFAULT_BASE_RATE, hurdle_mode=HurdleMode.MARGIN)
        t = time.perf_counter()
        dep = create_market(layout.root, terms, backend=backend, evaluators=evaluators, threshold=threshold,
                            rpc_url=rpc_url, seed=seed, progress=lambda stage: ui.stage(stage), signers=signers,
                            input_proofs=input_proofs, holders=holders, holder_threshold=holder_threshold,
                            slots=slots)
        setup = {"reused": False, "seconds": round(time.perf_counter() - t, 3), **dep.descriptor["timings"]}
    ui.stage("load circuit")
    circuit = dep.circuit()
    driver = RoundDriver(dep, circuit, progress=ui.event)

    # a round left open by a killed run: resume it with the inputs it was dealt
    todo: list[tuple[int, RoundPlan]] = []
    open_id = next_round_id(dep)
    if layout.demo_plan(open_id).exists():  # open on chain, or dealt and killed before its first commitment
        plan = RoundPlan.from_dict(read_json(layout.demo_plan(open_id)))
        if dep.coordinator.current_round() < open_id:
            deal_inputs(dep, open_id, plan)  # deterministic: the same files again
        todo.append((open_id, plan))
    driver.ensure_transcripts()  # a run killed between a round's close and its transcript
    plans = demo_plans(grid, rounds, seed)
    report = {
        "contract": dep.contract_address,
        "chain": {"backend": dep.chain.backend, "chain_id": dep.chain_id, "rpc_url": rpc_url},
        "backend": dep.backend,
        "terms": dep.terms.as_dict(),
        "evaluators": {"n": len(dep.evaluators), "threshold": dep.threshold},
        "key_holders": {"n": len(dep.holders), "threshold": dep.holder_threshold, "slots": dep.slots},
        "setup": setup,
        "rounds": [],
    }
    results, run_plans, r_bd_of = [], [], {}
    dealer_mm = driver.agent(DEALER_MM)
    for plan in [p for _, p in todo] + plans:
        if todo and plan is todo[0][1]:
            rid = todo.pop(0)[0]
        else:
            rid = next_round_id(dep)
            write_json(layout.demo_plan(rid), plan.as_dict(), mode=0o600)
            deal_inputs(dep, rid, plan)
        ui.round_start(rid, plan.label)
        run = driver.run_round(rid)  # writes the round's public transcript as it closes
        ui.round_done(rid, run["phase"])
        instruction = _instruction_or_none(dealer_mm, rid)
        if instruction and instruction["trade"]:
            r_bd_of[rid] = instruction["r_bd_x2"]
        ledger, per_round = rebuild_ledger(dep, r_bd_of)
        summary = round_summary(dep, rid, plan, run, per_round.get(rid), instruction)
        results.append(summary)
        run_plans.append(plan)
        ui.round_table(summary)
        report["rounds"] = results
        report["ledger"] = _ledger_doc(ledger)
        _write_reports(layout, report)  # after every round: a kill loses nothing already closed

    if not results:
        report["ledger"] = _ledger_doc(rebuild_ledger(dep, r_bd_of)[0])
    report["plots"] = write_plots(results, run_plans, layout.plots) if results else []
    if verify:
        ui.stage("auditor: repo-market verify (independent process)")
        report["verify"] = run_verify_process(layout.root, rpc_url)
        ui.verify_done(report["verify"])
    report["total_seconds"] = round(time.perf_counter() - start, 3)
    _write_reports(layout, report)
    return report


def _instruction_or_none(dealer, round_id: int) -> dict | None:
    """dealer_mm's opened instruction, or None for a round closed before the custodian instructed."""
    if not any(dealer.dep.coordinator.round(round_id).instruction_commitment):
        return None
    try:
        return dealer.instruction(round_id)
    except ProtocolError:
        return None


def _ledger_doc(ledger) -> dict:
    return {"balances": ledger.snapshot(), "conserved": ledger.totals() == ledger.initial_totals,
            "units": "cash in half-bp units (20000 per volume unit); collateral in volume units"}


def public_report(report: dict) -> dict:
    """``report`` without the narrator's private knowledge (PRIVATE_ROUND_KEYS of every round)."""
    rounds = [{k: v for k, v in r.items() if k not in PRIVATE_ROUND_KEYS} for r in report.get("rounds", [])]
    return {**report, "rounds": rounds, "private_report": f"{PRIVATE_REPORT} (0600; narrator's view)"}


def _write_reports(layout: DataDir, report: dict) -> None:
    write_json(layout.private_report_file, report, mode=0o600)
    write_json(layout.report_file, public_report(report))


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
