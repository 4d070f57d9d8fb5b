"""A round whose deadline passed while no process drove it.

The driver stops after a phase (the crash hook's points, raised here instead of exiting), the chain moves
past the phase's deadline (mined blocks; on anvil or a shared node blocks advance on their own), and the
next driver run must close the round by the contract's own rules -- cancel when neither dealer revealed or the
custodian or the evaluators missed their step, forfeit the deposit of the dealer that missed its leg -- and go
on with the next round.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.layout import DataDir
from protocol.deployment import open_market
from protocol.rounds import RoundDriver, next_round_id, rebuild_ledger
from protocol.scenario import deal_inputs, demo_plans

from .conftest import SIM_GRID

ROOT = Path(__file__).resolve().parents[2]

# stopped after -> (phase left open, phase it closes in, offender)
CASES = {
    "commit": ("REVEALING", "CANCELLED", None),        # neither dealer revealed [decided]
    "report.blobs": ("REVEALING", "CANCELLED", None),  # blobs published, no reveal sent
    "report": ("REPORTED", "CANCELLED", None),
    "compute": ("COMPUTED", "CANCELLED", None),
    "decrypt": ("INSTRUCTED", "FORFEITED", "dealer_mm"),
    "mm_leg": ("MM_LEG_DONE", "FORFEITED", "dealer_rm"),
}


class _Stopped(Exception):
    pass


def _stop_after(monkeypatch, point: str) -> None:
    import protocol.rounds as rounds

    def hook(round_id, where):
        if where == point:
            raise _Stopped(where)

    monkeypatch.setattr(rounds, "crash_point", hook)


def _leave_round_open(dep, monkeypatch, point: str) -> None:
    deal_inputs(dep, 1, demo_plans(SIM_GRID, 1, seed=0)[0])
    _stop_after(monkeypatch, point)
    with pytest.raises(_Stopped):
        RoundDriver(dep, dep.circuit()).run_round(1)
    monkeypatch.undo()


def _expire(dep) -> None:
    behind = dep.coordinator.deadline(1) + 1 - dep.chain.block_number
    dep.chain.mine(behind)


@pytest.mark.parametrize("point", list(CASES))
def test_an_expired_round_is_closed_by_the_contracts_rules_and_the_market_goes_on(fresh_market, monkeypatch, point):
    left, closed, offender = CASES[point]
    dep = open_market(fresh_market)
    _leave_round_open(dep, monkeypatch, point)
    assert dep.coordinator.phase(1).name == left
    _expire(dep)
    deposits = {r: dep.coordinator.deposit_of(dep.address(r)) for r in ("dealer_mm", "dealer_rm")}

    dep = open_market(fresh_market)  # the next run
    driver = RoundDriver(dep, dep.circuit())
    assert next_round_id(dep) == 1
    run = driver.run_round(1)
    rs = dep.coordinator.round(1)
    assert run["phase"] == closed == rs.phase.name
    if offender is None:
        assert rs.offender is None
        assert {r: dep.coordinator.deposit_of(dep.address(r)) for r in deposits} == deposits  # unlocked, kept
    else:
        assert rs.offender.lower() == dep.address(offender).lower()
        assert dep.coordinator.deposit_of(dep.address(offender)) == 0
    assert json.loads(dep.data_dir.transcript(1).read_text())["phase"] == closed

    # ... and the market goes on: the next round runs to its end
    assert next_round_id(dep) == 2
    deal_inputs(dep, 2, demo_plans(SIM_GRID, 1, seed=0)[0])
    assert driver.run_round(2)["phase"] == "SETTLED"
    ledger, _ = rebuild_ledger(dep)
    assert ledger.totals() == ledger.initial_totals


def test_the_next_demo_run_closes_an_expired_round_and_continues(fresh_market, monkeypatch):
    dep = open_market(fresh_market)
    plan = demo_plans(SIM_GRID, 1, seed=0)[0]
    DataDir(fresh_market).demo_plan(1).write_text(json.dumps(plan.as_dict()))
    _leave_round_open(dep, monkeypatch, "report")
    _expire(dep)
    env = {k: v for k, v in os.environ.items() if k != "REPO_MARKET_CRASH_AFTER"}
    out = subprocess.run([sys.executable, "-m", "protocol", "demo", "--data-dir", str(fresh_market),
                          "--backend", "simulate", "--grid", str(SIM_GRID), "--rounds", "1", "--json"],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert [(r["round"], r["phase"]) for r in report["rounds"]] == [(1, "CANCELLED"), (2, "SETTLED")]
    assert report["verify"]["ok"], report["verify"]["failures"]


def test_an_expired_round_on_anvil_is_closed_too(anvil_url, sim_template, scratch, monkeypatch):
    """On a node blocks advance without us; here they are mined through the node's own RPC."""
    from market.terms import MarketTerms
    from protocol.deployment import create_market
    from protocol.scenario import DEFAULT_BASE_RATE

    path = scratch / "market"
    create_market(path, MarketTerms(grid=SIM_GRID, base_rate=DEFAULT_BASE_RATE), backend="simulate",
                  evaluators=2, threshold=2, rpc_url=anvil_url)
    dep = open_market(path, anvil_url)
    _leave_round_open(dep, monkeypatch, "decrypt")
    from chain.node import rpc_request

    for _ in range(dep.coordinator.deadline(1) + 1 - dep.chain.block_number):
        rpc_request(anvil_url, "evm_mine")
    dep = open_market(path, anvil_url)
    driver = RoundDriver(dep, dep.circuit())
    assert driver.run_round(1)["phase"] == "FORFEITED"
    assert dep.coordinator.round(1).offender.lower() == dep.address("dealer_mm").lower()
    deal_inputs(dep, 2, demo_plans(SIM_GRID, 1, seed=0)[0])
    assert driver.run_round(2)["phase"] == "SETTLED"
