"""Metrics: Jain and Gini at their edges, the price of fairness against an equal split."""
from __future__ import annotations

import numpy as np
import pytest

from market.allocation import LogLinear, efficiency, equal_split, gini, jain, price_of_fairness, solve_equilibrium


def test_jain_and_gini_edge_cases():
    assert float(gini([0.0, 0.0, 0.0])) == 0.0 and float(jain([0.0, 0.0])) == 1.0
    assert float(gini([1.0, 1.0, 1.0])) == 0.0 and float(jain([2.0, 2.0])) == 1.0
    # one agent holds everything: Gini (n-1)/n, Jain 1/n (zeros included)
    assert float(gini([0.0, 0.0, 0.0, 5.0])) == pytest.approx(0.75)
    assert float(jain([0.0, 0.0, 0.0, 5.0])) == pytest.approx(0.25)
    x = np.random.default_rng(0).uniform(0, 3, 9)
    brute = np.abs(x[:, None] - x[None, :]).sum() / (2 * 9 * 9 * x.mean())
    assert float(gini(x)) == pytest.approx(brute)


def test_price_of_fairness_against_equal_split():
    agents = LogLinear([10.0, 15.0, 20.0], [1.0, 1.0, 1.0])
    fair = equal_split(agents, 0.5, 0.0, 5.0)
    np.testing.assert_allclose(fair.x, [5 / 3] * 3)
    eq = solve_equilibrium(agents, 0.5, 0.0, 5.0)
    eff_opt = float(efficiency(agents, eq.x, 0.5, 0.0))
    eff_fair = float(fair.metrics.efficiency)
    expected = (eff_opt - eff_fair) / eff_opt
    assert float(price_of_fairness(eff_opt, eff_fair)) == pytest.approx(expected)
    assert 0 < expected < 0.1  # equal split wastes capacity on the low-value agent, but not much
