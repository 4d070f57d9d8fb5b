"""Property tests over random monotone schedules: D2 ⇔ exhaustive, D3, D4, D6, Prop. 2.1, selection.

Two families. *Strict* schedules (every volume attainable: b strictly increasing, a strictly decreasing)
are the paper's setting; there the exhaustive equilibria are exactly the D2 locus points plus no-trade
profiles, and Prop. 2.1, D3 and D6 hold. Schedules *with flat runs* (e.g. the linear family with alpha > 1
on an integer grid) add unmatched tie equilibria at zero margin; for them the claims are checked on the
locus: an attainable locus profile is an exhaustive equilibrium iff it passes D2; D4 and the selection
properties hold unchanged.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from market import NO_TRADE, Instruction, equilibrium_volumes, joint_profit_maximiser, make_schedules, select_equilibrium
from market.equilibria import all_equilibria

from .strategies import hurdles, modes, monotone_schedules

EXAMPLES = settings(max_examples=150)


@EXAMPLES
@given(monotone_schedules())
def test_d2_agrees_with_exhaustive_best_responses_on_the_locus(s):
    eq = all_equilibria(s)
    found = {(int(m), int(r)) for m, r in zip(eq.r_mm, eq.r_rm)}
    d2 = set(equilibrium_volumes(s).tolist())
    for q in np.flatnonzero(s.attainable).tolist():
        if q > 0:
            assert ((int(s.b[q]), int(s.a[q])) in found) == (q in d2), q


@EXAMPLES
@given(monotone_schedules(allow_flats=False))
def test_d2_set_equals_exhaustive_set_for_strict_schedules(s):
    eq = all_equilibria(s)
    assert eq.volumes.tolist() == equilibrium_volumes(s).tolist()
    # every trade equilibrium is the locus point of its volume, and only one profile per volume
    trade = eq.trade
    assert np.array_equal(eq.r_mm[trade], s.b[eq.volume[trade]])
    assert np.array_equal(eq.r_rm[trade], s.a[eq.volume[trade]])
    assert len(set(eq.volume[trade].tolist())) == int(trade.sum())


@EXAMPLES
@given(monotone_schedules(allow_flats=False))
def test_prop_2_1_no_unmatched_inventory(s):
    assert all_equilibria(s).all_matched


@EXAMPLES
@given(monotone_schedules(allow_flats=False))
def test_d3_jpm_is_an_equilibrium_and_maximises_joint_payoff(s):
    eq = all_equilibria(s)
    q_star = joint_profit_maximiser(s)
    assert q_star in eq.volumes.tolist()
    assert eq.jpm == Instruction.at_volume(s, q_star)
    # no rate pair on the grid gives the two dealers more together than J*
    assert eq.best_joint_x2 == 2 * eq.jpm.joint_profit


@EXAMPLES
@given(monotone_schedules())
def test_d4_no_trade_is_an_equilibrium(s):
    assert all_equilibria(s).no_trade_count > 0


@EXAMPLES
@given(monotone_schedules(allow_flats=False))
def test_d6_equal_split_so_ranking_by_j_is_pareto(s):
    eq = all_equilibria(s)
    assert np.array_equal(eq.payoff_mm_x2, eq.payoff_rm_x2)
    assert np.array_equal(eq.payoff_mm_x2, 2 * eq.joint_profit // 2)
    ranking = eq.pareto_ranking()
    assert [j for _, j in ranking] == sorted((j for _, j in ranking), reverse=True)


@settings(max_examples=300)
@given(monotone_schedules(), hurdles, hurdles, modes)
def test_selection_is_an_equilibrium_or_no_trade(s, h_mm, h_rm, mode):
    chosen = select_equilibrium(s, h_mm, h_rm, mode)
    if chosen.trade:
        assert chosen.volume in equilibrium_volumes(s).tolist()
        assert (chosen.r_mm, chosen.r_rm) == (int(s.b[chosen.volume]), int(s.a[chosen.volume]))
        threshold = max(h_mm, h_rm) * (2 if mode == "margin" else 1)
        assert chosen.r_rm - chosen.r_mm >= threshold
    else:
        assert chosen.volume == 0


def test_d10_needs_strict_reports():
    # b flat at Q = 1: only Q = 2 is attainable, and it fails D2 (BDrm would cut to q = 1)
    s = make_schedules([2, 2, 2], [3, 3, 2])
    assert not s.strict
    assert select_equilibrium(s, 0, 0) == NO_TRADE
    assert select_equilibrium(s, 0, 0, equilibrium_filter=False).volume == 2


@settings(max_examples=300)
@given(monotone_schedules(allow_flats=False), hurdles, hurdles, modes)
def test_d10_equilibrium_filter_is_implied(s, h_mm, h_rm, mode):
    assert select_equilibrium(s, h_mm, h_rm, mode) == select_equilibrium(
        s, h_mm, h_rm, mode, equilibrium_filter=False
    )
