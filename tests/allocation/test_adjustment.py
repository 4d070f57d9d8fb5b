"""Algorithm 1: convergence to the KKT equilibrium, Fejér monotonicity, step rules, noise, residuals."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market.allocation import (
    AllocationInputError,
    best_response,
    LogLinear,
    StepRule,
    adjust_prices,
    draw_log_linear,
    lipschitz_bound,
    proximal_best_response,
    solve_equilibrium,
)
from market.allocation.equilibrium import participation_payoff


def _agents(seed, n=20):
    return draw_log_linear(np.random.default_rng(seed), n)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0])
@pytest.mark.parametrize("g", [0.0, 1.0])
def test_constant_step_converges_to_the_equilibrium(gamma, g):
    agents = _agents(0)
    m = 40.0
    eta = 1.0 / float(lipschitz_bound(agents, 0.5))
    res = adjust_prices(agents, 0.5, g, m, step=StepRule("constant", eta), gamma=gamma, tol=1e-9,
                        max_iter=5000)
    eq = solve_equilibrium(agents, 0.5, g, m)
    assert bool(res.converged)
    assert float(res.primal_residual) < 1e-9 and float(res.dual_residual) < 1e-9
    assert float(res.mu) == pytest.approx(float(eq.mu), abs=1e-6)
    np.testing.assert_allclose(res.x, eq.x, atol=1e-5)
    # history shapes: mu has one more entry than the per-round series
    h = res.history
    assert h.mu.shape == (res.iterations + 1,) and h.primal.shape == (res.iterations,)
    assert h.mu[0] == 0.0 and h.mu[-1] == float(res.mu)


def test_worked_example_by_price_adjustment():
    agents = LogLinear([10.0, 15.0, 20.0], [1.0, 1.0, 1.0])
    res = adjust_prices(agents, 0.5, 0.0, 5.0, step=StepRule("constant", 0.5), gamma=0.5, tol=1e-10,
                        max_iter=10000)
    assert float(res.mu) == pytest.approx(4.125, abs=1e-8)
    np.testing.assert_allclose(res.x, [7 / 9, 5 / 3, 23 / 9], atol=1e-8)


@settings(max_examples=30)
@given(st.integers(0, 2**32 - 1), st.floats(0.05, 1.99), st.floats(10.0, 120.0), st.floats(0.0, 2.0))
def test_fejer_monotone_below_two_over_l(seed, fraction, m, tau):
    """γ = 0, g = 0: the update is projected gradient descent on the convex dual, L-smooth, so for
    η < 2/L the distance to μ* never increases (Fejér monotonicity)."""
    agents = _agents(seed, 12)
    big_l = float(lipschitz_bound(agents, tau))
    if big_l == 0:
        return
    eta = fraction / big_l  # η·L in (0.05, 1.99), i.e. below 2/L
    eq = solve_equilibrium(agents, tau, 0.0, m)
    res = adjust_prices(agents, tau, 0.0, m, step=StepRule("constant", eta), max_iter=300, stop_early=False)
    dist = np.abs(res.history.mu - float(eq.mu))
    assert np.all(np.diff(dist) <= 1e-9 * (1 + dist[:-1]))


def test_step_above_the_local_bound_does_not_converge():
    agents = _agents(1)
    m = 40.0
    eq = solve_equilibrium(agents, 0.5, 0.0, m)
    local = -float((agents.demand_slope(0.5 + eq.mu) * (eq.x > 0)).sum())
    res = adjust_prices(agents, 0.5, 0.0, m, step=StepRule("constant", 3.0 / local), max_iter=500)
    assert not bool(res.converged)
    assert np.abs(res.history.mu[-50:] - float(eq.mu)).max() > 0.1


def test_step_rules():
    assert StepRule("constant", 0.3).eta(7) == 0.3
    assert StepRule("sqrt", 0.3).eta(4) == pytest.approx(0.15)
    assert StepRule("harmonic", 0.3).eta(3) == pytest.approx(0.1)
    with pytest.raises(AllocationInputError, match="step kind = 'newton'"):
        StepRule("newton", 0.1)
    with pytest.raises(AllocationInputError, match="eta0 = -1"):
        StepRule("constant", -1.0)


def test_harmonic_steps_average_out_noisy_reports():
    agents = _agents(2)
    m = 40.0
    eq = solve_equilibrium(agents, 0.5, 0.0, m)
    eta0 = 1.0 / float(lipschitz_bound(agents, 0.5))
    errs = []
    for reports in (1, 16):
        res = adjust_prices(agents, 0.5, 0.0, m, step=StepRule("harmonic", 20 * eta0), gamma=0.5,
                            reports=reports, noise_std=1.0, rng=np.random.default_rng(5), max_iter=3000,
                            stop_early=False)
        errs.append(abs(float(res.mu) - float(eq.mu)))
    assert errs[0] < 0.05 and errs[1] < 0.02
    # constant steps with the same noise keep jittering around μ*
    res = adjust_prices(agents, 0.5, 0.0, m, step=StepRule("constant", 20 * eta0), reports=1, noise_std=1.0,
                        rng=np.random.default_rng(5), max_iter=3000, stop_early=False)
    assert np.std(res.history.mu[-500:]) > 5 * np.std(
        adjust_prices(agents, 0.5, 0.0, m, step=StepRule("harmonic", 20 * eta0), reports=1, noise_std=1.0,
                      rng=np.random.default_rng(5), max_iter=3000, stop_early=False).history.mu[-500:])


def test_proximal_response_closed_form_is_the_argmax():
    """g = 0: the closed form is the argmax of U - (γ/2)(x - anchor)² (checked on a fine grid). g > 0: the
    same quantity for the agents that pass the g test at the price, 0 for the others [decided]."""
    agents = LogLinear([10.0, 4.0, 18.0, 2.2], [1.0, 3.0, 0.5, 0.2])
    anchor = np.array([2.0, 0.5, 6.0, 0.1])
    grid = np.linspace(0, 40, 400001)[:, None]
    for gamma in (0.5, 2.0, 0.1):
        x = proximal_best_response(agents, 1.2, 0.5, 0.0, anchor, gamma)
        obj = participation_payoff(agents, grid, 1.7, 0.0) - 0.5 * gamma * (grid - anchor) ** 2
        np.testing.assert_allclose(x, grid[np.argmax(obj, axis=0), 0], atol=2e-4)
        for g in (1.0, 3.0):
            with_fee = proximal_best_response(agents, 1.2, 0.5, g, anchor, gamma)
            passes = best_response(agents, 1.2, 0.5, g) > 0
            np.testing.assert_array_equal(with_fee, np.where(passes, x, 0.0))
            assert passes.any() and not passes.all()
    # the anchor pulls agent 1 in although its best response at this price is 0; the fee keeps it out
    pulled = proximal_best_response(agents, 1.2, 0.5, 0.0, anchor, 2.0)
    assert pulled[1] > 0 and best_response(agents, 1.2, 0.5, 0.0)[1] == 0.0
    assert proximal_best_response(agents, 1.2, 0.5, 1.0, anchor, 2.0)[1] == 0.0


def test_fixed_points_with_fixed_fee_are_equilibria():
    """With g > 0 and γ > 0 Algorithm 1 settles at the KKT equilibrium (no hysteresis in participation)."""
    agents = draw_log_linear(np.random.default_rng(0), 20, (50,))
    tau, g, m = 1.5, 1.0, 50.0
    eq = solve_equilibrium(agents, tau, g, m)
    eta = 1.0 / float(np.max(lipschitz_bound(agents, 0.5)))
    # start from the allocation of a lower fee, as after the fee shock
    start = solve_equilibrium(agents, 0.5, g, m)
    res = adjust_prices(agents, tau, g, m, step=StepRule("constant", eta), gamma=0.5, mu0=start.mu, x0=start.x,
                        max_iter=3000, tol=1e-9)
    settled = ~eq.jump  # at a g-jump no price clears exactly; a constant step cycles around it
    np.testing.assert_allclose(res.mu[settled], eq.mu[settled], atol=1e-6)
    np.testing.assert_array_equal(res.x[settled] > 0, eq.x[settled] > 0)


def test_max_iter_and_residuals_reported_when_not_converged():
    agents = _agents(3)
    res = adjust_prices(agents, 0.5, 1.0, 30.0, step=StepRule("constant", 1e-4), max_iter=7)
    assert res.iterations == 7 and not bool(res.converged)
    assert float(res.primal_residual) > 0 and float(res.dual_residual) > 0


def test_bad_parameters_are_named():
    agents = _agents(0)
    with pytest.raises(AllocationInputError, match="gamma = -1"):
        adjust_prices(agents, 0.5, 1.0, 30.0, gamma=-1.0)
    with pytest.raises(AllocationInputError, match=r"reports \(M\) = 0"):
        adjust_prices(agents, 0.5, 1.0, 30.0, reports=0)
    with pytest.raises(AllocationInputError, match="rng"):
        adjust_prices(agents, 0.5, 1.0, 30.0, noise_std=0.1)
    with pytest.raises(AllocationInputError, match="max_iter = 0"):
        adjust_prices(agents, 0.5, 1.0, 30.0, max_iter=0)
