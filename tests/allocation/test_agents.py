"""Agent families: another concave family plugs into the equilibrium, participation thresholds."""
from __future__ import annotations

import numpy as np
import pytest

from market.allocation import LogLinear, QuadraticLinear, centralized_optimum, solve_equilibrium


def test_quadratic_family_plugs_in():
    # V = a x - b x²/2, C = c x: demand (a - c - q)/b; two agents a = (10, 6), b = 1, c = 0, τ = 0, m = 4:
    # (10 - μ) + (6 - μ) = 4  =>  μ* = 6, x = (4, 0).
    agents = QuadraticLinear([10.0, 6.0], [1.0, 1.0], [0.0, 0.0])
    eq = solve_equilibrium(agents, 0.0, 0.0, 4.0)
    assert float(eq.mu) == pytest.approx(6.0, abs=1e-10)
    np.testing.assert_allclose(eq.x, [4.0, 0.0], atol=1e-10)
    central = centralized_optimum(agents, 0.0, 0.0, 4.0)
    np.testing.assert_allclose(central.x, eq.x, atol=1e-6)


def test_participation_threshold_is_where_the_payoff_meets_g():
    rng = np.random.default_rng(11)
    agents = LogLinear(rng.uniform(5, 20, 50), rng.uniform(0.5, 5, 50))
    for g in (1e-9, 0.3, 1.0, 5.0):
        q = agents.participation_threshold(g)
        x = agents.demand(q)
        payoff = agents.net_value(x) - q * x
        np.testing.assert_allclose(payoff, g, atol=1e-12)
    np.testing.assert_array_equal(agents.participation_threshold(0.0), agents.alpha - agents.beta)
    quad = QuadraticLinear([10.0, 6.0], [1.0, 2.0], [1.0, 0.5])
    q = quad.participation_threshold(2.0)
    x = quad.demand(q)
    np.testing.assert_allclose(quad.net_value(x) - q * x, 2.0, atol=1e-12)
