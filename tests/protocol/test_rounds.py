"""A round end to end through the roles, the blob store and the contract (simulation backend).

Checks outcomes against market's plaintext reference, the sequence of phases, the ledger's conservation,
deviation/skip forfeitures and that the honest dealer ends no worse off than with compliance.
"""
from __future__ import annotations

import pytest

from chain import RoundPhase
from protocol.deployment import WEI_PER_CASH_UNIT, open_market
from protocol.roles import DealerAgent
from protocol.rounds import rebuild_ledger
from protocol.scenario import RoundPlan, demo_plans

from .conftest import SIM_GRID, run_plans


def _reference(dep, plan):
    from market.selection import select_equilibrium

    return select_equilibrium(plan.schedules(), plan.hurdle_mm, plan.hurdle_rm, dep.terms.hurdle_mode)


def test_demo_rounds_follow_the_selection_rule_and_the_phase_order(sim_demo):
    path, runs = sim_demo
    dep = open_market(path)
    dealer_mm = DealerAgent(dep, "dealer_mm")
    labels = [plan.label for _, plan, _ in runs]
    assert labels == ["jpm", "hurdle", "no-trade", "deviation"]
    for rid, plan, run in runs:
        ref = _reference(dep, plan)
        instr = dealer_mm.instruction(rid)
        assert (instr["trade"], instr["volume"]) == (ref.trade, ref.volume)
        if ref.trade:
            assert (instr["r_mm"], instr["r_rm"], instr["r_bd_x2"]) == (ref.r_mm, ref.r_rm, ref.r_bd_x2)
        rs = dep.coordinator.round(rid)
        phases = [e.args["phase"] for e in dep.coordinator.events("PhaseChanged", round_id=rid)]
        if plan.label == "no-trade":
            assert phases == [1, 2, 3, 4, 8] and rs.mm_record is None and rs.rm_record is None
        elif plan.label == "deviation":
            assert phases == [1, 2, 3, 4, 5, 6, 9]
            assert rs.mm_record.rate == ref.r_mm + 1  # dealer_mm offered one bp more than instructed
        else:
            assert phases == [1, 2, 3, 4, 5, 6, 7, 8]
            assert (rs.mm_record.rate, rs.mm_record.volume) == (ref.r_mm, ref.volume)
            assert (rs.rm_record.rate, rs.rm_record.volume) == (ref.r_rm, ref.volume)
        assert set(run["timings"]) >= {"encrypt", "evaluate", "decrypt", "chain"}
    # the JPM round is the unconstrained maximum, the hurdle round strictly below it
    jpm = _reference(dep, runs[0][1])
    hurdle = _reference(dep, runs[1][1])
    from market.equilibria import all_equilibria

    assert jpm == all_equilibria(runs[0][1].schedules()).jpm
    assert 0 < hurdle.volume < all_equilibria(runs[1][1].schedules()).jpm.volume


def test_ledger_is_conserved_and_matched_rounds_split_the_joint_profit(sim_demo):
    path, runs = sim_demo
    dep = open_market(path)
    ledger, per_round = rebuild_ledger(dep, {rid: DealerAgent(dep, "dealer_mm").instruction(rid)["r_bd_x2"]
                                             for rid, plan, _ in runs if _reference(dep, plan).trade})
    ledger.check_conservation()
    for rid, plan, _ in runs:
        ref = _reference(dep, plan)
        change = per_round[rid]["cash_change"]
        assert sum(change.values()) == 0
        if plan.label in ("jpm", "hurdle"):
            # half-bp units: each dealer earns J/2 bp·units = J half-bp units
            assert change["BDmm"] == change["BDrm"] == ref.joint_profit
        if plan.label == "no-trade":
            assert all(v == 0 for v in change.values())


def test_deviating_dealer_forfeits_its_deposit_to_the_other(sim_demo):
    path, runs = sim_demo
    dep = open_market(path)
    rid = next(r for r, plan, _ in runs if plan.label == "deviation")
    rs = dep.coordinator.round(rid)
    assert rs.phase == RoundPhase.FORFEITED
    assert rs.offender == dep.address("dealer_mm") and rs.beneficiary == dep.address("dealer_rm")
    assert rs.forfeited_amount == dep.descriptor["deposit"]["minimum_wei"]
    assert dep.coordinator.withdrawable_of(dep.address("dealer_rm")) == rs.forfeited_amount


def _pnl(dep, rid, role, r_bd_x2):
    _, per_round = rebuild_ledger(dep, {rid: r_bd_x2})
    return per_round[rid]["cash_change"]["BDmm" if role == "dealer_mm" else "BDrm"]


@pytest.mark.parametrize("offender,behaviour", [
    ("dealer_mm", {"kind": "offer_rate", "rate_delta": 1}),
    ("dealer_mm", {"kind": "offer_rate", "rate_delta": -2}),
    ("dealer_mm", {"kind": "skip"}),
    ("dealer_rm", {"kind": "offer_rate", "rate_delta": -1}),
    ("dealer_rm", {"kind": "offer_rate", "rate_delta": 3}),
    ("dealer_rm", {"kind": "skip"}),
])
def test_honest_dealer_ends_no_worse_off_than_with_compliance(fresh_market, offender, behaviour):
    dep = open_market(fresh_market)
    base = demo_plans(SIM_GRID, 1, seed=0)[0]  # the JPM round
    honest = "dealer_rm" if offender == "dealer_mm" else "dealer_mm"
    key = "behaviour_mm" if offender == "dealer_mm" else "behaviour_rm"
    deviant = RoundPlan.from_dict({**base.as_dict(), "label": "deviant", key: behaviour})
    runs, _ = run_plans(dep, [base, deviant])
    (r1, _, _), (r2, _, _) = runs
    ref = _reference(dep, base)
    rs = dep.coordinator.round(r2)
    assert rs.phase == RoundPhase.FORFEITED
    assert rs.offender == dep.address(offender) and rs.beneficiary == dep.address(honest)
    compliance = _pnl(dep, r1, honest, ref.r_bd_x2)
    with_deviation = _pnl(dep, r2, honest, ref.r_bd_x2) + rs.forfeited_amount // WEI_PER_CASH_UNIT
    assert compliance == ref.joint_profit > 0
    assert with_deviation >= compliance
    # and the offender is worse off than if it had complied
    offender_pnl = _pnl(dep, r2, offender, ref.r_bd_x2) - rs.forfeited_amount // WEI_PER_CASH_UNIT
    assert offender_pnl < _pnl(dep, r1, offender, ref.r_bd_x2)
