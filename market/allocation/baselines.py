"""Baselines the proposed mechanism is compared with (ALLOCATION.md §3, all [decided] readings of the paper).

- **no enforcement**: no fees, no price, capacity not enforced: ``x = BR(0)`` with ``τ = g = μ = 0``;
- **proportional**: ``BR(0)`` without fees, scaled down proportionally to ``m`` when it exceeds capacity;
- **flat contract**: the fees τ, g but ``μ = 0``; proportional truncation when over capacity;
- **proposed**: the KKT equilibrium (:func:`~market.allocation.equilibrium.solve_equilibrium`);
- **centralized optimum**: ``max Eff(x; τ, g) s.t. Σx <= m, x >= 0``. With ``g = 0`` this is a concave
  program and equals the proposed equilibrium (μ* is its multiplier). With ``g > 0`` the fixed fee makes it a
  mixed-integer program; [decided] we solve the concave program for a participation set and improve the set by
  local search (toggle one agent at a time until no toggle helps), starting from the equilibrium's set.
  :func:`centralized_optimum` uses scipy (SLSQP) for the concave part; :func:`planner_optimum` is the
  vectorised closed-form (KKT-bisection) version used in sweeps; tests check they agree.
- **equal split**: ``x_i = m/n`` (the fair reference of the price of fairness).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize

from .equilibrium import BISECTION_TOL, _col, best_response, price_upper_bound, solve_equilibrium, validate_market
from .metrics import efficiency, measure

if TYPE_CHECKING:
    from .agents import AgentFamily
    from .metrics import AllocationMetrics

__all__ = [
    "BASELINES",
    "Outcome",
    "no_enforcement",
    "proportional_rationing",
    "flat_contract",
    "proposed",
    "centralized_optimum",
    "planner_optimum",
    "equal_split",
    "compare",
]

BASELINES = ("no_enforcement", "proportional", "flat", "proposed", "centralized")


@dataclass(frozen=True)
class Outcome:
    """An allocation with the prices that produced it and its metrics (batch-shaped)."""

    x: np.ndarray
    mu: np.ndarray
    tau: np.ndarray
    g: np.ndarray
    metrics: AllocationMetrics


def _outcome(agents, x, mu, tau, g, m) -> Outcome:
    mu = np.broadcast_to(np.asarray(mu, dtype=float), x.shape[:-1])
    return Outcome(x=x, mu=mu, tau=np.asarray(tau, dtype=float), g=np.asarray(g, dtype=float),
                   metrics=measure(agents, x, tau, g, mu, m))


def _truncate(x: np.ndarray, m) -> np.ndarray:
    total = x.sum(axis=-1)
    m = np.asarray(m, dtype=float)
    scale = np.where(total > m, m / np.where(total > 0, total, 1.0), 1.0)
    return x * scale[..., None]


def no_enforcement(agents: AgentFamily, m) -> Outcome:
    x = best_response(agents, 0.0, 0.0, 0.0)
    return _outcome(agents, x, 0.0, 0.0, 0.0, m)


def proportional_rationing(agents: AgentFamily, m) -> Outcome:
    x = _truncate(best_response(agents, 0.0, 0.0, 0.0), m)
    return _outcome(agents, x, 0.0, 0.0, 0.0, m)


def flat_contract(agents: AgentFamily, tau, g, m) -> Outcome:
    x = _truncate(best_response(agents, 0.0, tau, g), m)
    return _outcome(agents, x, 0.0, tau, g, m)


def proposed(agents: AgentFamily, tau, g, m) -> Outcome:
    eq = solve_equilibrium(agents, tau, g, m)
    return _outcome(agents, eq.x, eq.mu, tau, g, m)


def equal_split(agents: AgentFamily, tau, g, m) -> Outcome:
    shape = np.broadcast_shapes(agents.net_marginal(0.0).shape, np.shape(m) + (1,))
    x = np.broadcast_to(_col(m) / agents.n, shape).astype(float)
    return _outcome(agents, x, 0.0, tau, g, m)


# ---- centralized optimum -------------------------------------------------------------------------------

def _masked_kkt(agents: AgentFamily, tau, m, mask: np.ndarray) -> np.ndarray:
    """Planner's concave optimum over the agents in ``mask`` (no fixed fee inside): KKT by bisection."""
    tau_c = _col(tau)
    m_a = np.asarray(m, dtype=float)

    def s(mu):
        return (agents.demand(tau_c + _col(mu)) * mask).sum(axis=-1)

    batch = mask.shape[:-1]
    lo = np.zeros(batch)
    hi = np.broadcast_to(price_upper_bound(agents, tau), batch).astype(float)
    hi = np.where(s(lo) <= m_a, 0.0, hi)
    while np.any(hi - lo > BISECTION_TOL):
        mid = 0.5 * (lo + hi)
        ok = s(mid) <= m_a
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return agents.demand(tau_c + _col(hi)) * mask


def planner_optimum(agents: AgentFamily, tau, g, m, *, max_passes: int = 3) -> Outcome:
    """Centralized optimum, vectorised: closed-form KKT per participation set + one-agent toggles [decided]."""
    validate_market(tau, g, m)
    eq = solve_equilibrium(agents, tau, g, m)
    mask = eq.x > 0
    x = _masked_kkt(agents, tau, m, mask)
    best = efficiency(agents, x, tau, g)
    if np.any(np.asarray(g) > 0):
        eligible = agents.demand(_col(tau) + 0.0 * _col(eq.mu)) > 0
        for _ in range(max_passes):
            changed = False
            for j in range(agents.n):
                trial = mask.copy()
                trial[..., j] = ~trial[..., j] & eligible[..., j]
                xt = _masked_kkt(agents, tau, m, trial)
                et = efficiency(agents, xt, tau, g)
                better = et > best + 1e-12
                if better.any():
                    changed = True
                    mask = np.where(better[..., None], trial, mask)
                    x = np.where(better[..., None], xt, x)
                    best = np.where(better, et, best)
            if not changed:
                break
    return _outcome(agents, x, 0.0, tau, g, m)


def _scipy_concave(agents: AgentFamily, tau: float, m: float, idx: np.ndarray) -> np.ndarray:
    """max Σ_{i in idx} W_i(x_i) - τ x_i s.t. Σ x_i <= m, x >= 0, by SLSQP with analytic gradients."""
    x_full = np.zeros(agents.n)
    if idx.size == 0:
        return x_full
    sub = agents.select(idx)
    start = np.full(idx.size, min(1.0, m / idx.size) * 0.5)

    def negative(z):
        return -(sub.net_value(z).sum() - tau * z.sum())

    def negative_grad(z):
        return -(sub.net_marginal(z) - tau)

    res = minimize(
        negative, start, jac=negative_grad, method="SLSQP",
        bounds=[(0.0, None)] * idx.size,
        constraints=[{"type": "ineq", "fun": lambda z: m - z.sum(), "jac": lambda z: -np.ones_like(z)}],
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    z = np.clip(res.x, 0.0, None)
    z[z < 1e-9] = 0.0  # SLSQP leaves round-off at inactive bounds; those agents take nothing
    x_full[idx] = z
    return x_full


def centralized_optimum(agents: AgentFamily, tau: float, g: float, m: float) -> Outcome:
    """Centralized optimum of one instance via scipy (SLSQP) plus one-agent toggles of the set [decided]."""
    validate_market(tau, g, m)
    if agents.net_marginal(0.0).ndim != 1:
        raise ValueError("centralized_optimum solves one instance; use planner_optimum for a batch")
    eq = solve_equilibrium(agents, tau, g, m)
    mask = eq.x > 0
    eligible = agents.demand(np.asarray(tau, dtype=float)) > 0

    def value(mk):
        x = _scipy_concave(agents, tau, m, np.flatnonzero(mk))
        return x, float(efficiency(agents, x, tau, g))

    x, best = value(mask)
    if g > 0:
        improved = True
        while improved:
            improved = False
            for j in np.flatnonzero(eligible):
                trial = mask.copy()
                trial[j] = ~trial[j]
                xt, et = value(trial)
                if et > best + 1e-12:
                    mask, x, best, improved = trial, xt, et, True
    return _outcome(agents, x, 0.0, tau, g, m)


def compare(agents: AgentFamily, tau, g, m, *, centralized: str = "kkt") -> dict[str, Outcome]:
    """All baselines for the same agents; ``centralized`` is ``"kkt"`` (vectorised) or ``"scipy"``."""
    validate_market(tau, g, m)
    central = (centralized_optimum(agents, float(tau), float(g), float(m)) if centralized == "scipy"
               else planner_optimum(agents, tau, g, m))
    return {
        "no_enforcement": no_enforcement(agents, m),
        "proportional": proportional_rationing(agents, m),
        "flat": flat_contract(agents, tau, g, m),
        "proposed": proposed(agents, tau, g, m),
        "centralized": central,
    }
