"""Sequential play (D8), the simultaneous baseline's coordination failure, and incentives (D9)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings, strategies as st

from market import joint_profit_maximiser, linear_schedules, equilibrium_volumes
from market.equilibria import rate_grid
from market.incentives import (
    Deviate,
    MisreportHurdle,
    MisreportSchedule,
    profitable_misreport,
    realise,
)
from market.sequential import best_response_dynamics, independent_equilibrium_picks, sequential_play

from .strategies import hurdles, modes, monotone_schedules

EXAMPLE = linear_schedules(400, 460, 1, 1, 30)


def test_sequential_worked_example_both_orders():
    for leader in ("mm", "rm"):
        out = sequential_play(EXAMPLE, leader)
        assert (out.r_mm, out.r_rm, out.volume) == (415, 445, 15)
        assert out.payoff_mm_x2 == out.payoff_rm_x2 == 450


@settings(max_examples=100)
@given(monotone_schedules(allow_flats=False))
def test_d8_either_order_yields_jpm(s):
    q = joint_profit_maximiser(s)
    expected = (int(s.b[q]), int(s.a[q]), q) if q else None
    for leader in ("mm", "rm"):
        out = sequential_play(s, leader)
        assert out.joint_payoff_x2 == 2 * int(s.joint_profit[q])
        if expected:
            assert (out.r_mm, out.r_rm, out.volume) == expected
        else:
            assert out.volume == 0


def test_independent_picks_lose_welfare_in_the_worked_example():
    c = independent_equilibrium_picks(EXAMPLE)
    assert c.jpm_joint_profit == 450
    assert c.p_coordinated == Fraction(1, 20) and c.p_jpm == Fraction(1, 400)
    assert c.p_unmatched == Fraction(19, 20)
    # mismatched picks leave a dealer carrying inventory at a full client rate: worse than no trade
    assert c.expected_joint_profit < 0 and c.welfare_lost > 450
    # brute force over the 20 × 20 picks
    total = 0
    for q1 in range(1, 21):
        for q2 in range(1, 21):
            d, s_ = q1, q2
            q = min(d, s_)
            r_mm, r_rm = 400 + q1, 460 - q2
            total += (r_rm - r_mm) * q - 2 * (d - q) * r_mm + (r_rm - r_mm) * q - (s_ - q) * (r_mm + r_rm)
    assert c.expected_joint_profit == Fraction(total, 2 * 400)


def test_best_response_dynamics_rest_at_equilibria_below_jpm():
    d = best_response_dynamics(EXAMPLE, np.random.default_rng(7), starts=500)
    assert d.converged.all()
    assert set(d.final_volume.tolist()) <= set(range(21))
    assert 0 < d.p_jpm < 1
    assert d.mean_welfare_lost > 0
    assert np.all(d.final_joint_payoff_x2 <= 900)


def test_own_binding_hurdle_shaded_down_pays_only_by_breaking_participation():
    # BDmm's true hurdle 20 binds (Q = 10, J = 400); reporting 0 gets Q* = 15 at margin 15 < 20
    honest = realise(EXAMPLE, 20, 0)
    shaded = realise(EXAMPLE, 20, 0, strategy_mm=MisreportHurdle(0))
    assert honest.volume == 10 and honest.payoff_mm_x2 == 400
    assert shaded.volume == 15 and shaded.payoff_mm_x2 == 450
    assert not shaded.admissible_mm
    assert profitable_misreport(EXAMPLE, 20, 0, "mm", [MisreportHurdle(0)]) is None


def test_schedule_misreport_example():
    # BDmm claims MM lends 5 bp cheaper: the contract instructs r_mm = b[Q] - 5 and MM lends less
    fake = EXAMPLE.b - 5
    r = realise(EXAMPLE, 0, 0, strategy_mm=MisreportSchedule(fake))
    # reported J(Q) = (65 - 2Q)·Q peaks at Q = 16: r_mm = 416 - 5 = 411, r_rm = 444; MM lends only 11
    assert (r.instruction.volume, r.r_mm, r.r_rm, r.lend, r.borrow, r.volume) == (16, 411, 444, 11, 16, 11)
    assert r.payoff_mm_x2 == 33 * 11 < realise(EXAMPLE, 0, 0).payoff_mm_x2 == 450
    assert r.payoff_rm_x2 == 33 * 11 - 5 * (411 + 444)  # BDrm carries RM's extra 5 units at r_bd


@st.composite
def misreports(draw, s, side):
    """A strictly monotone report for ``side``'s schedule, near or far from the truth."""
    n = s.grid
    kind = draw(st.sampled_from(["shift", "random", "hurdle", "deviate"]))
    own = s.b if side == "mm" else s.a
    if kind == "shift":
        shift = draw(st.integers(-15, 15))
        return MisreportSchedule(own + max(shift, 1 - int(own.min())))
    if kind == "random":
        steps = np.asarray(draw(st.lists(st.integers(1, 8), min_size=n, max_size=n)))
        start = draw(st.integers(max(2, int(own.min()) - 20), int(own.max()) + 20))
        sign = 1 if side == "mm" else -1
        report = start + sign * np.concatenate([[0], np.cumsum(steps)])
        if report.min() < 1:
            report = report - int(report.min()) + 1
        return MisreportSchedule(report)
    if kind == "hurdle":
        return MisreportHurdle(draw(st.integers(0, 60)))
    grid = rate_grid(s)
    return Deviate(int(draw(st.sampled_from(grid.tolist()))))


@settings(max_examples=300)
@given(st.data(), monotone_schedules(allow_flats=False), hurdles, hurdles, modes, st.sampled_from(["mm", "rm"]))
def test_d9_truthful_reporting_is_never_beaten(data, s, h_mm, h_rm, mode, side):
    candidates = [data.draw(misreports(s, side)) for _ in range(4)]
    assert profitable_misreport(s, h_mm, h_rm, side, candidates, mode) is None
    honest = realise(s, h_mm, h_rm, mode)
    q = joint_profit_maximiser(s)
    assert honest.payoff_mm_x2 <= int(s.joint_profit[q]) and honest.payoff_rm_x2 <= int(s.joint_profit[q])
    if honest.volume:
        assert honest.volume in equilibrium_volumes(s).tolist()


def test_deviation_pays_only_against_the_instructed_interdealer_rate():
    # steep MM schedule: b[q] = 400 + 10q, a[q] = 600 - q; J(9) = 909 is the maximum
    from market import make_schedules

    s = make_schedules([400 + 10 * q for q in range(13)], [600 - q for q in range(13)])
    honest = realise(s, 0, 0)
    assert (honest.volume, honest.payoff_mm_x2) == (9, 909)
    cut = Deviate(480)  # BDmm offers b[8]: MM lends 8
    game = realise(s, 0, 0, strategy_mm=cut)
    settled = realise(s, 0, 0, strategy_mm=cut, settle="instructed")
    assert game.payoff_mm_x2 == (591 - 480) * 8 < 909           # game payoffs: no gain (Nash)
    assert settled.payoff_mm_x2 == (1081 - 960) * 8 == 968 > 909  # protocol settlement: gain of 29.5
    # the deposit rule K >= r_max · Q_max covers that gain many times over
    assert (settled.payoff_mm_x2 - honest.payoff_mm_x2) / 2 < 600 * 12
    assert realise(s, 0, 0, settle="instructed") == honest
