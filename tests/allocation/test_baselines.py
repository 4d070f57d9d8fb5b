"""Baselines and the centralized optimum (scipy vs vectorised, brute force with g > 0), with their metrics."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from market.allocation import (
    BASELINES,
    LogLinear,
    centralized_optimum,
    compare,
    draw_log_linear,
    efficiency,
    measure,
    planner_optimum,
)
from market.allocation.baselines import _scipy_concave


def test_compare_returns_every_baseline_with_consistent_metrics():
    agents = draw_log_linear(np.random.default_rng(4))
    out = compare(agents, 0.5, 1.0, 40.0, centralized="scipy")
    assert tuple(out) == BASELINES
    ne, prop, flat, eq, central = (out[k] for k in BASELINES)
    # no enforcement: BR at zero price without fees, over capacity here
    np.testing.assert_allclose(ne.x, np.maximum(0, agents.alpha / agents.beta - 1))
    assert bool(ne.metrics.over_capacity)
    # proportional: same shape, scaled to m
    assert float(prop.x.sum()) == pytest.approx(40.0)
    np.testing.assert_allclose(prop.x / prop.x.sum(), ne.x / ne.x.sum())
    # flat: fees, μ = 0, truncated to capacity
    assert float(flat.x.sum()) <= 40.0 + 1e-9 and float(flat.mu) == 0.0
    # proposed and centralized are feasible; the planner does at least as well as the equilibrium
    for oc in (eq, central):
        assert float(oc.x.sum()) <= 40.0 + 1e-6
    assert float(central.metrics.efficiency) >= float(eq.metrics.efficiency) - 1e-7
    m = measure(agents, eq.x, 0.5, 1.0, eq.mu, 40.0)
    assert float(m.efficiency) == pytest.approx(float(efficiency(agents, eq.x, 0.5, 1.0)))
    assert 0 <= float(m.gini) <= 1 and 1 / 20 <= float(m.jain) <= 1 and 0 <= float(m.participation) <= 1
    assert float(m.average_total_cost) >= float(m.average_private_cost)


@pytest.mark.parametrize("seed", range(4))
def test_planner_with_fixed_fee_matches_brute_force_on_small_instances(seed):
    rng = np.random.default_rng(seed)
    n = 7
    agents = LogLinear(rng.uniform(5, 20, n), rng.uniform(0.5, 5, n))
    tau, g, m = 0.5, 3.0, 8.0
    best = -np.inf
    for bits in itertools.product([False, True], repeat=n):
        x = _scipy_concave(agents, tau, m, np.flatnonzero(bits))
        best = max(best, float(efficiency(agents, x, tau, g)))
    fast = planner_optimum(agents, tau, g, m)
    slow = centralized_optimum(agents, tau, g, m)
    assert float(fast.metrics.efficiency) == pytest.approx(best, abs=1e-6)
    assert float(slow.metrics.efficiency) == pytest.approx(best, abs=1e-6)


def test_planner_batch_equals_per_instance():
    rng = np.random.default_rng(9)
    agents = LogLinear(rng.uniform(5, 20, (5, 10)), rng.uniform(0.5, 5, (5, 10)))
    batch = planner_optimum(agents, 0.5, 2.0, 20.0)
    for k in range(5):
        one = centralized_optimum(LogLinear(agents.alpha[k], agents.beta[k]), 0.5, 2.0, 20.0)
        assert float(batch.metrics.efficiency[k]) == pytest.approx(float(one.metrics.efficiency), abs=1e-6)
