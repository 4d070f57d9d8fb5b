"""KKT equilibrium: the worked examples of ALLOCATION.md §4 and the facts of §1 as properties."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.allocation import (
    AllocationInputError,
    LogLinear,
    aggregate_demand,
    best_response,
    capacity_sensitivity,
    centralized_optimum,
    dual_function,
    efficiency,
    fee_sensitivity,
    gini,
    price_upper_bound,
    solve_equilibrium,
)


def test_worked_example_1():
    agents = LogLinear([10.0, 15.0, 20.0], [1.0, 1.0, 1.0])
    eq = solve_equilibrium(agents, 0.5, 0.0, 5.0)
    assert float(eq.mu) == pytest.approx(4.125, abs=1e-10)
    np.testing.assert_allclose(eq.x, [7 / 9, 5 / 3, 23 / 9], atol=1e-10)
    assert bool(eq.binding) and not bool(eq.jump)
    assert float(efficiency(agents, eq.x, 0.5, 0.0)) == pytest.approx(38.336307, abs=1e-6)
    assert float(efficiency(agents, eq.x, 0.5, 1.0)) == pytest.approx(35.336307, abs=1e-6)
    assert float(gini(eq.x)) == pytest.approx(32 / 135, abs=1e-10)


def test_worked_example_1_with_fixed_fee_keeps_everyone():
    # g = 1: every agent's payoff at the g = 0 point is well above 1, so the equilibrium is unchanged.
    agents = LogLinear([10.0, 15.0, 20.0], [1.0, 1.0, 1.0])
    eq = solve_equilibrium(agents, 0.5, 1.0, 5.0)
    assert float(eq.mu) == pytest.approx(4.125, abs=1e-10)
    assert float(efficiency(agents, eq.x, 0.5, 1.0)) == pytest.approx(35.336307, abs=1e-6)


def test_worked_example_2():
    agents = LogLinear([8.0, 12.0, 16.0, 20.0], [1.0, 2.0, 1.5, 0.5])
    eq = solve_equilibrium(agents, 0.5, 0.0, 10.0)
    assert float(eq.mu) == pytest.approx(2.4053050822, abs=1e-9)
    np.testing.assert_allclose(eq.x, [1.04849553, 1.44633102, 2.63198455, 4.87318890], atol=1e-8)
    assert float(efficiency(agents, eq.x, 0.5, 0.0)) == pytest.approx(57.1906106668, abs=1e-8)
    assert float(gini(eq.x)) == pytest.approx(0.3164933408, abs=1e-9)


def test_slack_capacity_gives_zero_price_and_reports_slack():
    agents = LogLinear([10.0, 15.0, 20.0], [1.0, 1.0, 1.0])
    eq = solve_equilibrium(agents, 0.5, 0.0, 100.0)
    assert float(eq.mu) == 0.0 and not bool(eq.binding)
    np.testing.assert_allclose(eq.x, [10 / 1.5 - 1, 15 / 1.5 - 1, 20 / 1.5 - 1])
    assert float(eq.slack) == pytest.approx(100.0 - (45 / 1.5 - 3))


def test_participation_tie_gives_zero():
    # α = 4, β = 0.5, τ = 0.5: x = 3, payoff 4·log 4 - 3; with g exactly that, the tie drops the agent.
    agents = LogLinear([4.0], [0.5])
    g = 4 * np.log(4.0) - 3.0
    assert best_response(agents, 0.0, 0.5, g)[0] == 0.0
    assert best_response(agents, 0.0, 0.5, g - 1e-9)[0] == pytest.approx(3.0)


def test_fixed_fee_jump_is_reported_with_slack():
    # Agent 0 (α = 2) leaves where its payoff 2·log(2/p) - 2 + p - g hits 0; demand jumps down by its
    # demand there. Put m inside the jump: μ* is the exit price and half of agent 0's demand is slack.
    from scipy.optimize import brentq

    g, beta = 0.3, 0.1
    p_exit = brentq(lambda p: 2 * np.log(2 / p) - 2 + p - g, 0.2, 2.0)
    x0_exit = 2 / p_exit - 1
    x1_exit = 40 / p_exit - 1
    m = x1_exit + 0.5 * x0_exit
    agents = LogLinear([2.0, 40.0], [beta, beta])
    eq = solve_equilibrium(agents, 0.0, g, m)
    assert float(eq.mu) == pytest.approx(p_exit - beta, abs=1e-9)
    assert bool(eq.jump) and not bool(eq.binding)
    assert float(eq.slack) == pytest.approx(0.5 * x0_exit, abs=1e-6)
    assert float(eq.x[0]) == 0.0
    # the infimum: just below μ* the small agent is back in and demand exceeds m
    assert float(aggregate_demand(agents, float(eq.mu) - 1e-8, 0.0, g)) > m


def test_batch_matches_single_instances():
    rng = np.random.default_rng(3)
    alpha = rng.uniform(5, 20, size=(4, 7))
    beta = rng.uniform(0.5, 5, size=(4, 7))
    taus = np.array([0.0, 0.5, 1.0, 2.0])
    batch = solve_equilibrium(LogLinear(alpha, beta), taus, 1.0, 15.0)
    for k in range(4):
        one = solve_equilibrium(LogLinear(alpha[k], beta[k]), taus[k], 1.0, 15.0)
        assert float(batch.mu[k]) == pytest.approx(float(one.mu), abs=1e-11)
        np.testing.assert_allclose(batch.x[k], one.x, atol=1e-9)


def test_bad_input_names_field_and_value():
    with pytest.raises(AllocationInputError, match=r"alpha\[1\] = -2"):
        LogLinear([1.0, -2.0], [1.0, 1.0])
    with pytest.raises(AllocationInputError, match=r"beta\[0\] = nan"):
        LogLinear([1.0], [float("nan")])
    agents = LogLinear([10.0], [1.0])
    with pytest.raises(AllocationInputError, match=r"tau = -0.5"):
        solve_equilibrium(agents, -0.5, 0.0, 1.0)
    with pytest.raises(AllocationInputError, match=r"m = 0"):
        solve_equilibrium(agents, 0.5, 0.0, 0.0)
    with pytest.raises(AllocationInputError, match=r"g = -1"):
        solve_equilibrium(agents, 0.5, -1.0, 1.0)
    with pytest.raises(AllocationInputError, match="alpha/beta"):
        LogLinear([1.0, 2.0], [1.0, 2.0, 3.0])


# ---- §1 facts as properties ----------------------------------------------------------------------------

instances = st.tuples(
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.floats(min_value=0.0, max_value=2.0),
    st.floats(min_value=0.0, max_value=5.0),
    st.floats(min_value=1.0, max_value=200.0),
)


def _draw(n, seed):
    rng = np.random.default_rng(seed)
    return LogLinear(rng.uniform(5, 20, n), rng.uniform(0.5, 5, n))


@settings(max_examples=60)
@given(instances)
def test_aggregate_demand_is_non_increasing(case):
    n, seed, tau, g, _ = case
    agents = _draw(n, seed)
    mus = np.linspace(0.0, 25.0, 400)
    s = aggregate_demand(agents, mus, tau, g)
    assert np.all(np.diff(s) <= 1e-12)


@settings(max_examples=60)
@given(instances)
def test_kkt_conditions_and_price_bound(case):
    n, seed, tau, g, m = case
    agents = _draw(n, seed)
    eq = solve_equilibrium(agents, tau, g, m)
    mu = float(eq.mu)
    assert mu >= 0 and float(eq.demand) <= m + 1e-9
    bound = float((agents.alpha - agents.beta).max() - tau)
    assert mu == 0.0 or mu < bound
    assert float(price_upper_bound(agents, tau)) == pytest.approx(max(0.0, bound))
    if g == 0:
        # complementary slackness; S is continuous so the price pins demand at m when positive
        assert mu * float(eq.slack) <= 1e-8 * max(1.0, mu)
    if mu > 0:
        # infimum: just below μ*, demand exceeds capacity
        assert float(aggregate_demand(agents, max(0.0, mu - 1e-9), tau, g)) > m - 1e-6
    np.testing.assert_array_equal(eq.x, best_response(agents, eq.mu, tau, g))


@settings(max_examples=40)
@given(instances)
def test_price_falls_when_capacity_grows(case):
    n, seed, tau, _, m = case
    agents = _draw(n, seed)
    eq = solve_equilibrium(agents, tau, 0.0, m)
    if not bool(eq.binding):
        return
    slope = float(capacity_sensitivity(agents, eq.mu, tau, 0.0))
    assert slope < 0
    dm = 1e-4
    numeric = (float(solve_equilibrium(agents, tau, 0.0, m + dm).mu) - float(eq.mu)) / dm
    if float(solve_equilibrium(agents, tau, 0.0, m + dm).mu) > 0:
        assert numeric == pytest.approx(slope, rel=1e-3, abs=1e-6)
    assert float(fee_sensitivity(eq.binding)) == -1.0


@settings(max_examples=40)
@given(instances)
def test_dual_function_bounds_the_optimum(case):
    n, seed, tau, g, m = case
    agents = _draw(n, seed)
    eq = solve_equilibrium(agents, tau, g, m)
    eff = float(efficiency(agents, eq.x, tau, g))
    d_star = float(dual_function(agents, eq.mu, tau, g, m))
    for mu in (0.0, 0.5 * float(eq.mu), float(eq.mu) + 1.0, 7.0):
        assert float(dual_function(agents, mu, tau, g, m)) >= d_star - 1e-9  # μ* minimises D
    # weak duality against the feasible equilibrium allocation; equality (strong duality) when g = 0
    assert d_star >= eff - 1e-9
    if g == 0:
        assert d_star == pytest.approx(eff, abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("m", [20.0, 50.0, 100.0])
def test_g_zero_equilibrium_is_the_centralized_optimum(seed, m):
    rng = np.random.default_rng(seed)
    agents = LogLinear(rng.uniform(5, 20, 20), rng.uniform(0.5, 5, 20))
    eq = solve_equilibrium(agents, 0.5, 0.0, m)
    central = centralized_optimum(agents, 0.5, 0.0, m)
    np.testing.assert_allclose(eq.x, central.x, atol=1e-6)
    assert float(efficiency(agents, eq.x, 0.5, 0.0)) == pytest.approx(
        float(central.metrics.efficiency), abs=1e-6)


@settings(max_examples=40)
@given(instances, st.integers(min_value=0, max_value=3))
def test_fast_inner_loop_equals_direct_demand(case, batch):
    """The bisection's allocation-free S(μ) (participation thresholds) equals the direct best responses."""
    from market.allocation.equilibrium import _fast_aggregate_demand

    n, seed, tau, g, _ = case
    rng = np.random.default_rng(seed)
    shape = (batch, n) if batch else (n,)
    agents = LogLinear(rng.uniform(5, 20, shape), rng.uniform(0.5, 5, shape))
    fast = _fast_aggregate_demand(agents, tau, g)
    for mu in rng.uniform(0, 20, 25):
        mu_b = np.full(shape[:-1], mu)
        np.testing.assert_allclose(fast(mu_b), aggregate_demand(agents, mu_b, tau, g), rtol=1e-12, atol=1e-9)
