"""Exhaustive equilibria on the worked example, the game's payoffs, and the linear closed forms."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings, strategies as st

from market import Instruction, equilibrium_volumes, joint_profit_maximiser, linear_schedules
from market.equilibria import all_equilibria, linear_closed_form, rate_grid
from market.game import client_surplus, play


def test_payoffs_of_section_3():
    s = linear_schedules(400, 460, 1, 1, 30)
    # matched at Q = 15: each dealer earns J/2 = 225, doubled 450
    p = play(s, 415, 445)
    assert (int(p.volume), int(p.payoff_mm_x2), int(p.payoff_rm_x2)) == (15, 450, 450)
    # BDmm overshoots to 420 (MM lends 20) while RM borrows 15: BDmm carries 5 units at 420 bp
    p = play(s, 420, 445)
    assert (int(p.lend), int(p.borrow), int(p.volume)) == (20, 15, 15)
    assert int(p.payoff_mm_x2) == 25 * 15 - 2 * 5 * 420
    assert int(p.payoff_rm_x2) == 25 * 15
    # BDrm overshoots to 440 (RM borrows 20) while MM lends 15: BDrm carries 5 units at r_bd = 427.5
    p = play(s, 415, 440)
    assert int(p.payoff_rm_x2) == 25 * 15 - 5 * (415 + 440)
    assert int(p.payoff_mm_x2) == 25 * 15


def test_client_surplus():
    s = linear_schedules(400, 460, 1, 1, 30)
    mm, rm = client_surplus(s, 415, 445)
    # MM: sum_{q=1..15} (415 - (400 + q)) = sum_{k=0..14} k = 105; RM the same by symmetry
    assert (int(mm), int(rm)) == (105, 105)


def test_worked_example_exhaustive():
    s = linear_schedules(400, 460, 1, 1, 30)
    rates = rate_grid(s)
    assert (int(rates[0]), int(rates[-1])) == (399, 461)
    eq = all_equilibria(s)
    assert eq.volumes.tolist() == list(range(21))
    assert eq.largest_volume == 20
    assert eq.at_volume(20) == Instruction(True, 20, 420, 440, 860, 400)
    assert eq.jpm == Instruction(True, 15, 415, 445, 860, 450)
    # no-trade profiles: MM lends nothing (r_mm <= 400) and RM borrows nothing (r_rm >= 460)
    assert sorted(zip(eq.r_mm[eq.volume == 0].tolist(), eq.r_rm[eq.volume == 0].tolist())) == [
        (399, 460), (399, 461), (400, 460), (400, 461)]
    assert len(eq) == 20 + 4
    assert eq.all_matched
    assert eq.pareto_ranking()[:3] == [(15, 450), (16, 448), (14, 448)]
    assert eq.profiles()[-1] == {"r_mm": 420, "r_rm": 440, "volume": 20}


def test_flat_runs_add_zero_margin_ties_but_the_locus_test_holds():
    # alpha_d = 2: b[Q] = 400 + ceil(Q/2) has flat runs; odd volumes are not attainable by MM
    s = linear_schedules(400, 460, 2, 1, 40)
    assert s.attainable[1::2].sum() == 0 or not s.attainable[1]
    eq = all_equilibria(s)
    d2 = equilibrium_volumes(s).tolist()
    assert set(eq.volume[eq.trade].tolist()) >= set(d2) - {0}
    assert joint_profit_maximiser(s) in d2


def test_closed_form_of_the_worked_example():
    c = linear_closed_form(400, 460, 1, 1)
    assert (c.q_star, c.s_star, c.j_star, c.q_bar, c.q_competitive) == (15, 30, 450, 20, 30)
    c = linear_closed_form(400, 460, 1, Fraction(1, 2))
    assert (c.k, c.q_star, c.q_bar, c.q_competitive) == (3, 10, 12, 20)


@settings(max_examples=60)
@given(st.integers(12, 240), st.integers(1, 3), st.integers(1, 3))
def test_grid_matches_closed_forms(delta, inv_d, inv_s):
    """With 1/alpha integer the grid schedules are the exact linear ones: J(Q) = (Δ - kQ)·Q."""
    alpha_d, alpha_s = Fraction(1, inv_d), Fraction(1, inv_s)
    c = linear_closed_form(300, 300 + delta, alpha_d, alpha_s)
    s = linear_schedules(300, 300 + delta, alpha_d, alpha_s, int(np.ceil(c.q_competitive)))
    q_star = joint_profit_maximiser(s)
    j_star = int(s.joint_profit[q_star])
    assert abs(q_star - c.q_star) <= Fraction(1, 2)
    assert c.j_star - c.k / 4 <= j_star <= c.j_star
    q_bar = int(equilibrium_volumes(s).max())
    assert abs(q_bar - c.q_bar) < 1
    assert int(np.flatnonzero(s.spread <= 0)[0]) == int(np.ceil(c.q_competitive))
    if c.q_star.denominator == 1:
        assert q_star == c.q_star and j_star == c.j_star
