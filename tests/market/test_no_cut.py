"""The per-volume thresholds (market.no_cut) equal the D2 filter and the exhaustive best-response enumeration
on weakly monotone schedules with runs of equal values, both hurdle modes, ties."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from market import NO_TRADE, make_schedules, select_equilibrium
from market.equilibria import all_equilibria
from market.locus import d2_mask
from market.no_cut import no_cut_spread, select_by_thresholds

from .oracle import enumerated_selection
from .strategies import hurdles, modes, monotone_schedules


@st.composite
def runs_schedules(draw, max_grid: int = 9):
    """Weakly monotone schedules built from runs of equal values (run lengths 1-4), wide and narrow steps."""
    n = draw(st.integers(1, max_grid))
    big = draw(st.sampled_from([3, 12, 40]))

    def steps():
        out = []
        while len(out) < n:
            out += [0] * draw(st.integers(0, 3)) + [draw(st.integers(1, big))]
        return np.array(out[:n])

    b0 = draw(st.integers(2, 30))
    b = b0 + np.concatenate([[0], np.cumsum(steps())])
    a = b0 + draw(st.integers(-5, 80)) - np.concatenate([[0], np.cumsum(steps())])
    a = a - min(0, int(a.min()) - 2)
    return make_schedules(b, a)


schedules_with_flats = st.one_of(runs_schedules(), monotone_schedules())


@settings(max_examples=400, deadline=None)
@given(schedules_with_flats, hurdles, hurdles, modes)
def test_thresholds_equal_the_exhaustive_enumeration(s, h_mm, h_rm, mode):
    got = select_by_thresholds(s, h_mm, h_rm, mode)
    assert got == enumerated_selection(s, h_mm, h_rm, mode)
    assert got == select_equilibrium(s, h_mm, h_rm, mode)


@settings(max_examples=300, deadline=None)
@given(schedules_with_flats)
def test_no_cut_spreads_are_the_d2_test_on_attainable_volumes(s):
    ok = (s.spread >= no_cut_spread(s.b, "mm")) & (s.spread >= no_cut_spread(s.a, "rm"))
    att = s.attainable
    assert np.array_equal((ok & att)[1:], (d2_mask(s) & att)[1:])
    # and each attainable locus point is an exhaustive equilibrium iff it passes
    eq = all_equilibria(s)
    found = {(int(m), int(r)) for m, r in zip(eq.r_mm, eq.r_rm)}
    for q in np.flatnonzero(att)[1:].tolist():
        assert ((int(s.b[q]), int(s.a[q])) in found) == bool(ok[q]), q


def test_flat_step_cases_by_hand():
    # b flat at Q = 1: only Q = 2 is attainable and BDrm would cut to 1 (a[1] = 3 > a[2]): no trade
    s = make_schedules([2, 2, 2], [3, 3, 2])
    assert no_cut_spread(s.a, "rm").tolist() == [0, 0, 1] and s.spread[2] == 0
    assert select_by_thresholds(s, 0, 0) == NO_TRADE == enumerated_selection(s, 0, 0, "margin")
    # the attainable J-argmax (Q = 6, J = 48, tie with Q = 4) fails: BDmm cuts to 5 (5·(18 − 8) = 50 > 48)
    s = make_schedules([4, 4, 7, 7, 7, 8, 10], [19, 19, 19, 19, 19, 18, 18])
    assert select_equilibrium(s, 0, 0, equilibrium_filter=False).volume == 6
    assert select_by_thresholds(s, 4, 6, "spread").volume == 4 == enumerated_selection(s, 4, 6, "spread").volume
    # a far, non-neighbouring deviation decides: only Q = 4 clears the hurdle, BDmm cuts to q = 2
    s = make_schedules([6, 6, 6, 32, 32, 57, 71], [64, 43, 43, 43, 41, 28, 2])
    assert select_by_thresholds(s, 1, 0) == NO_TRADE == enumerated_selection(s, 1, 0, "margin")


def test_linear_schedules_with_several_units_per_bp():
    from market.schedules import linear_schedules

    for alpha in (2, 3, 5):
        s = linear_schedules(400, 460, alpha, alpha, 30 * alpha)
        for h in (0, 5, 10, 15, 20, 30):
            for mode in ("margin", "spread"):
                assert select_by_thresholds(s, h, h, mode) == enumerated_selection(s, h, h, mode), (alpha, h, mode)
