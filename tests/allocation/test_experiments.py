"""Experiments (small replications): the trends of the paper and the theory, never its numbers."""
from __future__ import annotations

import numpy as np
import pytest

from market.allocation import experiments as X


def test_fee_sweep_participation_and_efficiency_fall_as_tau_rises(sweep):
    prop = sweep["baselines"]["proposed"]
    eff = prop["efficiency"]["mean"]
    part = prop["participation"]["mean"]
    assert np.all(np.diff(eff) < 0)
    assert np.all(np.diff(part) <= 1e-12) and part[-1] < part[0]
    # no enforcement ignores fees and capacity
    assert np.ptp(sweep["baselines"]["no_enforcement"]["efficiency"]["mean"]) == 0.0
    # the planner never does worse than the equilibrium
    cen = sweep["baselines"]["centralized"]["efficiency"]["mean"]
    assert np.all(cen >= eff - 1e-9)
    assert sweep["price_of_fairness"]["mean"].shape == sweep["taus"].shape


def test_dashboard_shapes_and_monotone_surfaces():
    out = X.dashboard(np.random.default_rng(1), replications=10, taus=np.linspace(0, 2, 5),
                      gs=np.linspace(0, 5, 4))
    assert out["efficiency"].shape == (5, 4) == out["elasticity_tau"].shape
    assert np.all(np.diff(out["participation"], axis=0) <= 1e-12)
    assert np.all(np.diff(out["participation"], axis=1) <= 1e-12)
    assert np.all(out["elasticity_tau"] <= 1e-12)


def test_pareto_mask():
    mask = X.pareto_mask([1, 2, 3, 2], [3, 2, 1, 1])
    assert mask.tolist() == [True, True, True, False]
    out = X.pareto_frontier(np.random.default_rng(2), replications=10)
    assert out["frontier"].any()


def test_fee_shock_resilience_and_recovery():
    out = X.fee_shock(np.random.default_rng(3), replications=10)
    assert 0 < out["resilience"]["mean"] < 1  # higher fees: lower efficiency after the shock
    assert out["recovered_share"] > 0.5 and out["recovery_time"]["mean"] > 0
    mu = out["paths"]["mu"]["mean"]
    assert mu.shape == (100,)


def test_participation_shock_leave_and_join():
    leave = X.participation_shock(np.random.default_rng(4), replications=10, mode="leave")
    join = X.participation_shock(np.random.default_rng(4), replications=10, mode="join")
    assert leave["resilience"]["mean"] < 1 < join["resilience"]["mean"]
    part = leave["paths"]["participation"]["mean"]
    assert part[60:].mean() < part[40:50].mean()


def test_dynamic_demand_and_fee_volatility_track_the_equilibrium():
    dd = X.dynamic_demand(np.random.default_rng(5), replications=5)
    fv = X.fee_volatility(np.random.default_rng(6), replications=5)
    for out in (dd, fv):
        assert out["tracking_error"]["mean"] < 0.5
        assert out["efficiency_ratio"]["mean"] == pytest.approx(1.0, abs=0.05)
    assert np.all((fv["tau_path"]["mean"] >= 0) & (fv["tau_path"]["mean"] <= 2))


def test_regret_slope_with_sqrt_steps_is_at_most_point_six():
    out = X.regret(np.random.default_rng(7), replications=5)
    assert out["slope"] <= 0.6
    assert np.all(np.diff(out["regret"]["mean"]) > 0)  # regret keeps growing, sublinearly


def test_step_sweep_converges_below_two_over_l_and_diverges_far_above():
    out = X.step_sweep(np.random.default_rng(8), replications=5)
    c = out["multiples_of_2_over_L"]
    assert np.all(out["converged_share"][c < 1] == 1.0)
    assert np.all(out["diverged_share"][c > 10] == 1.0)
